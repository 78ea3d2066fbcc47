"""Benchmark: `xfer summary` over the paper's logs against `zcat` of the same files, side by side in one run.

For each round, on the same machine state:
  1. zcat: every log decompressed to /dev/null by as many zcat processes as there are cores (the floor: the text
     must at least be inflated once);
  2. cold: `xfer summary --format json` as a fresh process with an empty parse cache (XFER_CACHE in a temp dir);
  3. warm: the same command again (cache filled), and `summary.summarize()` in a Python that has already imported
     the kit (what re-running a Jupyter cell costs).
It prints the best wall time of each over the rounds, CPU seconds (user+sys, all processes), the ratios
cold/zcat (target <= 2) and warm in-process (target < 0.5 s), and the load average before and after, since other
work on the machine slows every figure. Figures: docs/figures.md.

Usage: .venv/bin/python bench/bench_logs.py [--results DIR] [--rounds 3]
(default: the paper's logs as `xfer paper` fetched them; without them it says so, names the command and skips)
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xfer.paths import paper_results

ROOT = Path(__file__).resolve().parent.parent


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(run):
    """(wall seconds, CPU seconds of the child processes) of run()."""
    cpu, start = children_cpu(), time.perf_counter()
    run()
    return time.perf_counter() - start, children_cpu() - cpu


def zcat_all(files, cores):
    """All files through `zcat`, split into one batch per core, the batches running at once."""
    batches = [files[i::cores] for i in range(cores)]
    procs = [subprocess.Popen(["zcat", "--", *batch], stdout=subprocess.DEVNULL) for batch in batches if batch]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("zcat failed")


def xfer_summary(results, cache):
    env = dict(os.environ, XFER_CACHE=str(cache))
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "xfer"), "summary", "--results", str(results),
                          "--format", "json"], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def warm_in_process(results, cache):
    os.environ["XFER_CACHE"] = str(cache)
    from xfer.report import summary
    start = time.perf_counter()
    numbers = summary.summarize(results)
    return time.perf_counter() - start, numbers


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", help="a results tree (default: the paper's logs, fetched by `xfer paper`)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = Path(args.results) if args.results else paper_results()
    if not args.results and not results.is_dir():
        print(f"bench_logs: skipped: the paper's logs are not fetched yet (looked in {results}); fetch them with "
              "`.venv/bin/xfer paper` and run this again")
        return 0
    files = sorted(str(p) for p in results.glob("*/*.gz"))
    if not files:
        raise SystemExit(f"no *.gz logs under {results}")
    cores = len(os.sched_getaffinity(0))
    size = sum(os.path.getsize(f) for f in files)
    print(f"{len(files)} logs in {len(list(results.iterdir()))} folders, {size / 1e6:.0f} MB gzip; {cores} cores; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    best = {}
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="xfer-bench-cache-") as cache:
            figures = {"zcat": timed(lambda: zcat_all(files, cores))}
            figures["cold"] = timed(lambda: xfer_summary(results, cache))
            figures["warm"] = timed(lambda: xfer_summary(results, cache))
            wall, numbers = warm_in_process(results, cache)
            figures["warm in-process"] = (wall, float("nan"))
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {w:.2f} s" for k, (w, _) in figures.items()))
        for key, value in figures.items():
            if key not in best or value[0] < best[key][0]:
                best[key] = value
    print(f"\nbest of {args.rounds} rounds (wall; CPU = user+sys of all processes):")
    for key, (wall, cpu) in best.items():
        cpu_text = "" if cpu != cpu else f"  CPU {cpu:6.2f} s"
        print(f"  {key:<16} {wall:6.2f} s{cpu_text}")
    ratio = best["cold"][0] / best["zcat"][0]
    print(f"\ncold xfer summary / zcat (wall): {ratio:.2f}x  (target <= 2)")
    print(f"cold xfer summary / zcat (CPU):  {best['cold'][1] / best['zcat'][1]:.2f}x")
    print(f"warm in-process summarize():     {best['warm in-process'][0]:.3f} s  (target < 0.5 s)")
    print(f"warm xfer summary (new process): {best['warm'][0]:.3f} s (interpreter and imports included)")
    base = [numbers[f"half{s}{h}"]["top1"] for s in "0123" for h in "AB" if f"half{s}{h}" in numbers]
    if base:
        print(f"check: {len(numbers)} nets summarised, base nets' mean top-1 {sum(base) / len(base):.4f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
