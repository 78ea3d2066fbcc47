# xfer: the two commands a user needs are `make demo` and `make test`.
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: setup test demo cuda-check bench help notebook

help:
	@echo "make setup       install Debian packages, build Caffe (cached), create .venv with the kit"
	@echo "make test        setup + the whole test suite (caffe, slow and slurm tests included)"
	@echo "make demo        setup + the whole study in miniature on Fashion-MNIST (CPU)"
	@echo "make notebook    setup + Jupyter on 127.0.0.1 with plots/transfer_plots.ipynb (prints the URL with its token)"
	@echo "make bench       the benchmarks (database writer, log parser)"
	@echo "make cuda-check  compile and link the CUDA build of Caffe (not part of CI)"

setup:
	bash tools/setup.sh

test: setup
	.venv/bin/python -m pytest -ra $(PYTEST_ARGS)

demo: setup
	.venv/bin/xfer demo $(DEMO_ARGS)

notebook: setup
	bash tools/notebook.sh

bench: setup
	@for b in bench/*.py; do echo "== $$b"; .venv/bin/python $$b || exit 1; done

cuda-check:
	bash tools/cuda_check.sh
