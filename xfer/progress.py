"""Progress for people: bars (tqdm, imported only when one is drawn: it costs ~0.1 s of start-up that most `xfer`
verbs never use) and the lines library code reports.

Library modules never print: they `say(text)` (or `say(text, err=True)` for problems). By default the lines go to
stdout / stderr as they come; a caller that wants them elsewhere (a notebook, a test) wraps the call in
`reporting(sink)`, where `sink(text, err)` receives each line.
"""
import contextlib
import sys

_sink = None


def tqdm(*args, **kwargs):
    from tqdm import tqdm as bar
    return bar(*args, **kwargs)


def say(text="", err=False) -> None:
    """Report one line (flushed at once: a long run's progress must show while it runs, also through a pipe)."""
    if _sink is not None:
        _sink(text, err)
        return
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


@contextlib.contextmanager
def reporting(sink):
    """Send every line said inside the block to `sink(text, err)` instead of stdout / stderr."""
    global _sink
    previous, _sink = _sink, sink
    try:
        yield
    finally:
        _sink = previous
