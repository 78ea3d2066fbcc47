# xfer: the two commands a user needs are `make demo` and `make test`.
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: setup test lint demo demo-full cuda-check bench help caffe-tests pycaffe-tests notebook

help:
	@echo "make setup       install Debian packages, build Caffe (cached), create .venv with the kit"
	@echo "make test        setup + lint + the whole test suite (caffe, slow and slurm tests included)"
	@echo "make lint        ruff on the package, tests and benchmarks (part of make test)"
	@echo "make demo        setup + the whole study in miniature on Fashion-MNIST (CPU)"
	@echo "make demo-full   setup + every figure of the paper in miniature (4 splits, Figure 3, reduced; 156 nets)"
	@echo "make notebook    setup + Jupyter on 127.0.0.1 with plots/transfer_plots.ipynb (prints the URL with its token)"
	@echo "make bench       the benchmarks (database writer, log parser, Caffe's data layers)"
	@echo "make cuda-check  compile and link the CUDA build of Caffe (not part of CI)"
	@echo "make caffe-tests    Caffe's own C++ tests (gtest, CPU filter) against the kit's build (built once, cached)"
	@echo "make pycaffe-tests  pycaffe's own unittests against the kit's build"

setup:
	bash tools/setup.sh

test: setup lint
	.venv/bin/python -m pytest -ra --durations=25 $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check xfer tests bench plots tools

demo: setup
	.venv/bin/xfer demo $(DEMO_ARGS)

demo-full: setup
	.venv/bin/xfer demo --full $(DEMO_ARGS)

notebook: setup
	bash tools/notebook.sh

bench: setup
	@for b in bench/*.py; do echo "== $$b"; .venv/bin/python $$b || exit 1; done

cuda-check:
	bash tools/cuda_check.sh

# Caffe's own test suites against the kit's patched build (`make test` runs both through tests/test_caffe_suites.py).
CAFFE_TESTS_ARGS ?=
caffe-tests: setup
	.venv/bin/python tools/caffe_tests.py $(CAFFE_TESTS_ARGS)

pycaffe-tests: setup
	bash tools/pycaffe_tests.sh
