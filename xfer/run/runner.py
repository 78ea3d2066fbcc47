"""`xfer run`: the whole graph of nets, bases before transfers, on local slots/GPUs or as SLURM jobs.

The graph comes from the registry (a net depends on its base). Finished nets are skipped, so the runner can be
killed at any moment and run again: each net's own `xfer train` resumes from its newest snapshot, and its lock keeps
a net that is still training elsewhere from starting twice (the runner waits for it instead).
"""
from ..errors import XferError
from ..nets import layout, registry
from ..progress import say
from . import backends, checks, snapshots
from .netdir import is_finished, net_dir


def plan(patterns, suite, results) -> tuple:
    """(nets to train in dependency order, nets finished already). Unfinished bases of selected nets are added; a
    net whose final snapshot is cut short or unreadable counts as unfinished (it trains again from its newest whole
    snapshot)."""
    selected = registry.match(patterns, suite)
    if patterns and not selected:
        raise XferError(f"no net of the {suite} suite matches {' '.join(patterns)}",
                        fix=f"see the names with `xfer status --suite {suite}`")
    finished = FinishedWhole(results)
    wanted = {net.name for net in selected}
    stack = list(selected)
    while stack:
        for dep in registry.dependencies(stack.pop()):
            base = registry.get(dep, suite)
            if dep not in wanted and not finished(base):
                wanted.add(dep)
                stack.append(base)
    ordered = order_by_dependencies([net for net in registry.nets(suite) if net.name in wanted])
    return [net for net in ordered if not finished(net)], [net for net in ordered if finished(net)]


class FinishedWhole:
    """is_finished, and its final snapshot whole (xfer/run/snapshots.py); each net asked once, a broken one said."""

    def __init__(self, results):
        self.results, self.known = results, {}

    def __call__(self, net) -> bool:
        if net.name not in self.known:
            problem = snapshots.final_problem(net, self.results) if is_finished(net, self.results) else "unfinished"
            if problem not in (None, "unfinished"):
                say(f"{net.name}: its final snapshot {problem}; it trains again from its newest whole snapshot")
            self.known[net.name] = problem is None
        return self.known[net.name]


def order_by_dependencies(nets) -> list:
    """Bases before the nets that need them, otherwise registry order."""
    placed, out, remaining = set(), [], list(nets)
    names = {net.name for net in nets}
    while remaining:
        ready = [n for n in remaining if all(d in placed or d not in names for d in registry.dependencies(n))]
        if not ready:
            raise XferError("the dependency graph has a cycle: " + ", ".join(n.name for n in remaining))
        for net in ready:
            placed.add(net.name)
            out.append(net)
        remaining = [n for n in remaining if n.name not in placed]
    return out


def check_rendered(todo, results) -> None:
    missing = [net.name for net in todo if not (net_dir(results, net.name) / layout.SOLVER).is_file()]
    if missing:
        raise XferError(f"{len(missing)} net(s) are not rendered: {', '.join(missing[:5])}"
                        + (" ..." if len(missing) > 5 else ""), path=net_dir(results, missing[0]),
                        fix=f"run `xfer render --suite {todo[0].suite}` first")


def say_refusal(todo, results) -> None:
    """A dry run prints its plan even where a real run would refuse to start, and says why it would."""
    try:
        check_rendered(todo, results)
        checks.before_submit(todo, results)
    except XferError as exc:
        say(f"a real run would refuse to start: {exc}", err=True)


def run_graph(patterns, suite, results, backend="local", options=None) -> int:
    """Train the nets matching `patterns` (and their unfinished bases) through a registered backend; exit code."""
    options = options or backends.RunOptions()
    todo, done = plan(patterns, suite, results)
    if options.dry_run:
        say_refusal(todo, results)
    else:
        check_rendered(todo, results)
        checks.before_submit(todo, results)  # labels, stale weights, a hand-started Caffe: refused before any start
    runner = backends.get(backend)(options)
    return runner.wait(runner.submit(todo, done, results), todo, results)
