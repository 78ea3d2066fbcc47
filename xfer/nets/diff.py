"""`xfer render --diff`: what a render would change on disk, as unified diffs grouped by change.

A one-line template edit changes the same line in every net; the nets' diffs differ only in their context lines
(layer names such as `fc6-new`) and line numbers. Diffs are therefore grouped by the lines they remove and add:
each group is shown once (with the context of its first net) and followed by the nets it applies to.
"""
import difflib
import os
from pathlib import Path

from . import registry
from .render import plan_net

CONTEXT = 2


def file_diff(path, text, name) -> list:
    """Unified diff lines from the file on disk (empty when missing) to `text`."""
    have = Path(path).read_text() if Path(path).is_file() else ""
    return list(difflib.unified_diff(have.splitlines(keepends=True), text.splitlines(keepends=True),
                                     fromfile=f"{name} (on disk)", tofile=f"{name} (rendered)", n=CONTEXT))


def change_key(name, lines) -> tuple:
    """What makes two diffs the same change: the file and the lines removed and added (not context or line numbers)."""
    return (name,) + tuple(line for line in lines[2:] if line[:1] in "+-")


def link_diff(folder, name, target) -> list:
    have = os.readlink(folder / name) if (folder / name).is_symlink() else None
    if have == target:
        return []
    return [f"--- {name} (on disk)\n", f"+++ {name} (rendered)\n",
            f"-{name} -> {have}\n" if have else f"-{name} (missing)\n", f"+{name} -> {target}\n"]


def net_changes(plan) -> list:
    """[(key, diff lines)] for one net: each rendered file and link that a render would change."""
    out = []
    for name, text in plan.texts.items():
        lines = file_diff(plan.folder / name, text, name)
        if lines:
            out.append((change_key(name, lines), lines))
    for name in plan.relinks:
        if name not in plan.links:  # a stale link of another backend or data mode: render removes it
            lines = [f"--- {name} (on disk)\n", f"+++ {name} (rendered)\n", f"-{name} (removed by render)\n"]
        else:
            lines = link_diff(plan.folder, name, plan.links[name])
        out.append((("link", name, lines[-1]), lines))
    for name, target in plan.links.items():
        if not (plan.folder / name).is_symlink() and not (plan.folder / name).exists():
            lines = link_diff(plan.folder, name, target)
            out.append((("link", name, lines[-1]), lines))
    return out


def group_changes(nets, out_dir, data_dir, **options) -> dict:
    """{key: (diff lines of the first net, [net names], [nets where the file was edited by hand or is trained])},
    in the order the changes are first met."""
    groups = {}
    for net in nets:
        plan = plan_net(net, Path(out_dir) / net.name, data_dir, **options)
        held = plan.held_back(force=False)
        for key, lines in net_changes(plan):
            group = groups.setdefault(key, (lines, [], []))
            group[1].append(net.name)
            if held:
                group[2].append(net.name)
    return groups


def name_list(names, selected) -> str:
    if len(names) == len(selected) and len(selected) > 1:
        return f"all {len(selected)} selected nets"
    return f"{len(names)} net(s): {registry.compress(names)}"


def diff_text(nets, out_dir, data_dir, **options) -> str:
    """The grouped diff as text ('' when a render would change nothing)."""
    groups = group_changes(nets, out_dir, data_dir, **options)
    parts = []
    for key, (lines, names, held) in groups.items():
        head = f"# {name_list(names, nets)}"
        if len(names) > 1 and key[0] != "link":
            head += f" (context lines from {names[0]})"
        if held:
            head += (f"\n# kept by `xfer render` without --force (edited by hand since the last render, or trained): "
                     f"{registry.compress(held)}")
        parts.append(head + "\n" + "".join(lines))
    if not parts:
        return ""
    touched = {name for _, names, _ in groups.values() for name in names}
    parts.append(f"# {len(groups)} change(s) in {len(touched)} of {len(nets)} net(s)\n")
    return "\n".join(parts)
