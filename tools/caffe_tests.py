#!/usr/bin/env python3
"""`make caffe-tests`: Caffe's own C++ test suite (gtest, upstream's `make runtest`) against the kit's Caffe build.

Builds the test binary once (tools/build_caffe_tests.sh, cached beside the kit's build under the same key), runs it
from the patched source root with upstream's CPU filter `-*GPU*` against the kit's installed libcaffe, and prints
passed / failed / disabled per test case from gtest's XML report. Failures known upstream are listed, each with its
reason, in tools/caffe-tests-known-failures.txt; they are excluded by name in the filter and printed, never
silently. Exits 1 on any failure, on a crash, or when a test the filter selects did not report.

    .venv/bin/python tools/caffe_tests.py [--json SUMMARY.json] [-- EXTRA GTEST ARGS]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KNOWN_FAILURES = ROOT / "tools" / "caffe-tests-known-failures.txt"
CPU_FILTER = "*GPU*"  # upstream's CMake `runtest` excludes these on a CPU_ONLY build


class SuiteError(Exception):
    """A problem with the setup or the input, reported as one line (no traceback)."""


def read_known_failures(path=KNOWN_FAILURES) -> list:
    """[(gtest pattern, reason)] from lines `Case.Test  # reason`; a line without a reason is an error."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pattern, _, reason = line.partition("#")
        if not reason.strip() or len(pattern.split()) != 1:
            raise SuiteError(f"{path}:{number}: expected `TestCase.TestName  # why it fails upstream`, got {line!r}")
        entries.append((pattern.strip(), reason.strip()))
    return entries


def gtest_filter(known) -> str:
    """The negative filter: upstream's GPU exclusion plus each known failure by name."""
    return "-" + ":".join([CPU_FILTER] + [pattern for pattern, _ in known])


def load_record(venv: Path) -> dict:
    record = venv / "caffe-build.json"
    if not record.is_file():
        raise SuiteError(f"no Caffe build record at {record}; run 'make setup' first")
    return json.loads(record.read_text())


def build_binary(venv: Path) -> Path:
    """The cached tests folder (bin/test.testbin, src/); builds it on the first call (~10 min on 2 cores)."""
    proc = subprocess.run(["bash", str(ROOT / "tools" / "build_caffe_tests.sh")], stdout=subprocess.PIPE, text=True,
                          env=dict(os.environ, VENV=str(venv)))
    if proc.returncode != 0:
        raise SuiteError("building Caffe's test binary failed (the lines above name the log)")
    return Path(proc.stdout.strip().splitlines()[-1])


def suite_env(prefix: str) -> dict:
    """The kit's installed libcaffe first: the binary's own build tree (its RUNPATH) was removed after the build."""
    paths = [os.path.join(prefix, "lib")] + [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    return dict(os.environ, LD_LIBRARY_PATH=":".join(paths))


def loaded_libcaffe(binary: Path, env: dict) -> str:
    """Which libcaffe the dynamic linker picks for the binary (from ldd), so the report can name it."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env).stdout
    for line in out.splitlines():
        if "libcaffe" in line:
            return line.split("=>")[-1].split("(")[0].strip()
    raise SuiteError(f"ldd {binary} names no libcaffe:\n{out}")


def list_tests(binary: Path, src: Path, env: dict, filt: str) -> list:
    """Full names (Case.Test) that gtest selects for a filter, from --gtest_list_tests."""
    out = subprocess.run([str(binary), "--gtest_list_tests", f"--gtest_filter={filt}"], cwd=src, env=env,
                         capture_output=True, text=True, check=True).stdout
    names, case = [], None
    for line in out.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            case = line.split("#")[0].strip()
        else:
            names.append(case + line.split("#")[0].strip())
    return names


def check_known_failures(binary, src, env, known) -> None:
    """Each known-failure entry must still name a test; a stale entry would hide nothing and mislead."""
    for pattern, _ in known:
        if not list_tests(binary, src, env, pattern):
            raise SuiteError(f"{KNOWN_FAILURES}: {pattern!r} matches no test of {binary}; remove the line")


def run_binary(binary: Path, src: Path, env: dict, filt: str, xml: Path, extra: list) -> int:
    """Runs the suite from the source root (gtest's own output streams to the terminal); returns its exit status."""
    args = [str(binary), f"--gtest_filter={filt}", f"--gtest_output=xml:{xml}"] + extra
    print("[caffe-tests] (cd %s && LD_LIBRARY_PATH=%s %s)" % (src, env["LD_LIBRARY_PATH"], " ".join(args)), flush=True)
    return subprocess.run(args, cwd=src, env=env, stdout=sys.stderr).returncode


def count_cases(xml: Path) -> list:
    """[{case, passed, failed, disabled, filtered, seconds, failures}] per test case (gtest's testsuite)."""
    rows = []
    for suite in ET.parse(xml).getroot().iter("testsuite"):
        row = dict(case=suite.get("name"), passed=0, failed=0, disabled=0, filtered=0,
                   seconds=float(suite.get("time", 0)), failures=[])
        for case in suite.iter("testcase"):
            name = f"{row['case']}.{case.get('name')}"
            if case.get("status") != "run":
                disabled = "DISABLED_" in name
                row["disabled" if disabled else "filtered"] += 1
            elif case.find("failure") is not None:
                row["failed"] += 1
                row["failures"].append(name)
            else:
                row["passed"] += 1
        rows.append(row)
    return rows


def summarize(rows: list, seconds: float) -> dict:
    totals = {k: sum(r[k] for r in rows) for k in ("passed", "failed", "disabled", "filtered")}
    ran = [r for r in rows if r["passed"] + r["failed"]]
    return dict(totals, cases=len(ran), seconds=round(seconds, 1),
                failures=[name for r in rows for name in r["failures"]])


def print_report(rows: list, summary: dict, known: list, libcaffe: str) -> None:
    width = max(len(r["case"]) for r in rows)
    print(f"{'test case':<{width}}  passed  failed  disabled  not run  seconds")
    for r in rows:
        if r["passed"] + r["failed"] + r["disabled"]:
            print(f"{r['case']:<{width}}  {r['passed']:6d}  {r['failed']:6d}  {r['disabled']:8d}  "
                  f"{r['filtered']:7d}  {r['seconds']:7.2f}")
    for pattern, reason in known:
        print(f"excluded as known upstream: {pattern} ({reason})")
    for name in summary["failures"]:
        print(f"FAILED: {name}")
    print(f"caffe gtest: {summary['passed']} passed, {summary['failed']} failed, {summary['disabled']} disabled, "
          f"{summary['filtered']} not run (filter -{CPU_FILTER}, {len(known)} known upstream failures"
          f"{''.join(' then ' + arg for arg in summary['extra_args'])}) in "
          f"{summary['cases']} test cases, {summary['seconds']} s; libcaffe {libcaffe}")


def write_json(path: Path, summary: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, path)


def run_suite(venv: Path, extra: list) -> dict:
    """Build if needed, run, parse; returns the summary with `ok` set."""
    record = load_record(venv)
    known = read_known_failures()
    tests = build_binary(venv)
    binary, src = tests / "bin" / "test.testbin", tests / "src"
    env = suite_env(record["prefix"])
    libcaffe = loaded_libcaffe(binary, env)
    check_known_failures(binary, src, env, known)
    filt = gtest_filter(known)
    selected = list_tests(binary, src, env, filt)
    with tempfile.TemporaryDirectory(prefix="caffe-tests-") as tmp:
        xml = Path(tmp) / "gtest.xml"
        started = time.monotonic()
        status = run_binary(binary, src, env, filt, xml, extra)
        elapsed = time.monotonic() - started
        if not xml.is_file():
            raise SuiteError(f"test.testbin exited with status {status} and wrote no report (a crash: "
                             "its last lines above name the test)")
        rows = count_cases(xml)
    summary = summarize(rows, elapsed)
    summary.update(selected=len(selected), exit_status=status, libcaffe=libcaffe, filter=filt, extra_args=extra,
                   known_failures=[p for p, _ in known], binary=str(binary))
    print_report(rows, summary, known, libcaffe)
    summary["ok"] = judge(summary, status, extra)
    return summary


def judge(summary: dict, status: int, extra: list) -> bool:
    """Success: exit status 0, no failure, and every selected test reported (unless extra args set another filter)."""
    reported = summary["passed"] + summary["failed"]
    narrowed = any(arg.startswith("--gtest_filter") for arg in extra)  # gtest's last filter wins over ours
    complete = reported == summary["selected"] or narrowed
    if not complete:
        print(f"caffe gtest: the filter selects {summary['selected']} tests but {reported} reported", file=sys.stderr)
    return status == 0 and summary["failed"] == 0 and reported > 0 and complete


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv", help="the kit's venv (default .venv)")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument("gtest_args", nargs="*", help="after --: passed to test.testbin (e.g. --gtest_shuffle)")
    args = parser.parse_args(argv)
    try:
        summary = run_suite(args.venv, args.gtest_args)
    except SuiteError as exc:
        print(f"caffe-tests: {exc}", file=sys.stderr)
        return 2
    if args.json:
        write_json(args.json, summary)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
