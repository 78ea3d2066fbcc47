"""The `xfer` command: one verb per stage of the study (see `xfer --help`).

Each module of this package owns the verbs of one stage through a `register(subparsers)` function and only parses
arguments and calls the library; this file lists the modules, in the order of the data flow, so `--help` reads
like the pipeline.
"""
import argparse
import importlib
import os
import sys

from ..errors import XferError

STAGE_MODULES = [
    "doctor",      # the Caffe build
    "images",      # a miniature's images from Debian packages (and its lists, splits, databases)
    "lists",       # ImageNet dir -> whole lists
    "splits",      # whole lists -> the paper's derivative lists
    "databases",   # lists -> LMDB/LevelDB + means
    "render",      # registry -> prototxts in results/<net>
    "surgery",     # base weights -> init weights of a transfer net; verify frozen layers
    "train",       # one net with real `caffe train`
    "runner",      # the whole graph, locally or on SLURM; status
    "paper",       # the original study's logs -> the kit's cache (checked)
    "summary",     # logs -> the paper's numbers
    "figures",     # numbers -> the paper's figures
    "similarity",  # trained nets -> linear CKA layer by layer
    "probe",       # a trained base -> linear probes per layer for another task
    "demo",        # the whole study in miniature
    "rehearse",    # the paper's pipeline at full size on an ImageNet-shaped tree
    "recipes",     # mini recipes searched for the paper's Figure 2 effects
]


def build_parser(modules=STAGE_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xfer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    parser.verbs = sub.choices  # verb -> its parser: which verbs these modules registered
    return parser


def parser_for(argv) -> argparse.ArgumentParser:
    """The parser for this command line. A verb named like its stage module (`xfer summary`) needs only that
    module: importing every stage module costs ~0.15 s of start-up, which a cold `xfer summary` pays before any work.
    Anything else (`--help`, other verbs, a typo) gets the full menu."""
    verb = argv[0] if argv else None
    if verb in STAGE_MODULES:
        parser = build_parser([verb])
        if verb in parser.verbs:  # the module did register that verb
            return parser
    return build_parser()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = parser_for(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except XferError as exc:
        print(f"xfer {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xfer {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `xfer nets --json | head`: the reader left; stop quietly, as `cat` does, with nothing more to stdout
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
