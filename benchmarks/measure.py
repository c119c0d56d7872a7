"""Timing whole processes: the launcher, variants, cases and their rounds."""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import typing as t
from pathlib import Path

import generate


@dataclasses.dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    inner: float | None
    ext: float | None = None
    #: With several copies at once: when each one ended, seconds from the start.
    ends: list[float] | None = None


# The timed process is started by this small launcher, not by the runner: a
# child's peak RSS counts the memory of the process it was forked from (Linux keeps
# the pre-exec high-water mark), and the runner holds SQLAlchemy. The launcher
# (``python -I -S``, ~10 MB) is smaller than any process we time. It starts
# ``copies`` processes at once and waits for all of them: the wall time is the
# group's (until the last one ends), CPU the sum, peak RSS the largest process's.
# A shell's figures include the processes it waited for (``wait4``).
LAUNCHER = """\
import json, os, signal, sys, time
result, timeout, copies, argv = (
    sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
start = time.perf_counter()
pids = [os.posix_spawn(argv[0], argv, os.environ) for _ in range(copies)]
def kill(*args):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
signal.signal(signal.SIGALRM, kill)
signal.setitimer(signal.ITIMER_REAL, timeout)
runs = []
for _ in pids:
    pid, status, usage = os.wait4(-1, 0)
    runs.append({"end": time.perf_counter() - start,
                 "cpu": usage.ru_utime + usage.ru_stime,
                 "maxrss_kb": usage.ru_maxrss,
                 "rc": os.waitstatus_to_exitcode(status)})
signal.setitimer(signal.ITIMER_REAL, 0)
with open(result, "w") as f:
    json.dump(runs, f)
"""


def measure(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    inner: bool,
    copies: int = 1,
) -> Run:
    """Run ``copies`` processes at once to completion; wall, CPU and peak RSS."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        result = Path(tmp) / "result.json"
        subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                LAUNCHER,
                os.fspath(result),
                str(timeout),
                str(copies),
                *argv,
            ],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
            timeout=timeout + 30,
            check=True,
        )
        runs = json.loads(result.read_text())
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    failed = [r["rc"] for r in runs if r["rc"] != 0]
    if failed:
        tail = "\n".join((stdout + stderr).splitlines()[-15:])
        command = " ".join(argv)
        if len(command) > 300:
            command = command[:300] + "..."
        raise RuntimeError(f"exit {failed[0]} in {cwd}: {command}\n{tail}")
    inner_s = ext_s = None
    if inner:
        reported = json.loads(stdout.strip().splitlines()[-1])
        inner_s = float(reported["inner"])
        ext_s = reported.get("ext")
    ends = [r["end"] for r in runs]
    return Run(
        wall=max(ends),
        cpu=sum(r["cpu"] for r in runs),
        rss_mb=max(r["maxrss_kb"] for r in runs) / 1024,
        inner=inner_s,
        ext=ext_s,
        ends=ends if copies > 1 else None,
    )


@dataclasses.dataclass
class Variant:
    """One way to run a case: ``ext``, ``fm``, ``none`` (the floor) or another
    name (``ext_1``, ``ext_jobs1``...) that a ``ratio`` target refers to."""

    name: str
    cwd: Path
    argv: list[str]
    url: str
    reset: t.Callable[[], None] | None = None
    inner: bool = False
    #: Processes started at once; the run's wall time is the group's.
    copies: int = 1
    runs: list[Run] = dataclasses.field(default_factory=list)

    def summary(self) -> dict[str, t.Any]:
        walls = [r.wall for r in self.runs]
        out: dict[str, t.Any] = {
            "n": len(walls),
            "copies": self.copies,
            "median": statistics.median(walls),
            "min": min(walls),
            "cpu_median": statistics.median(r.cpu for r in self.runs),
            "rss_mb_median": statistics.median(r.rss_mb for r in self.runs),
            "rss_mb_max": max(r.rss_mb for r in self.runs),
            "wall": walls,
            "cpu": [r.cpu for r in self.runs],
            "rss_mb": [r.rss_mb for r in self.runs],
        }
        ends = [r.ends for r in self.runs if r.ends is not None]
        if ends:
            out["ends"] = ends
        inner = [r.inner for r in self.runs if r.inner is not None]
        if inner:
            out["inner_median"] = statistics.median(inner)
            out["inner_min"] = min(inner)
            out["inner"] = inner
        ext = [r.ext for r in self.runs if r.ext is not None]
        if ext:
            out["ext_lines_median"] = statistics.median(ext)
            out["ext_lines"] = ext
        return out


@dataclasses.dataclass
class Target:
    """``kind``: ``fm`` (ext/FM median), ``floor`` (ext/floor median), ``rss``
    (ext/FM median peak RSS), ``import_ms`` (ext - none in-process import, ms),
    ``ratio`` (median of variant ``num`` / median of variant ``den``, divided
    by the same ratio of the pair ``per`` when given; with ``limit`` None it
    is only reported)."""

    kind: str
    limit: float | None
    num: str = "ext"
    den: str = "fm"
    label: str | None = None
    per: tuple[str, str] | None = None


@dataclasses.dataclass
class Case:
    key: str
    workload: str
    title: str
    backend: str
    variants: list[Variant]
    slow: bool = False
    targets: list[Target] = dataclasses.field(default_factory=list)
    #: Extra facts for the report (W6: command, size).
    info: dict[str, t.Any] = dataclasses.field(default_factory=dict)

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


def flask_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "app", *args]


def run_case(
    case: Case, n: int, warmup: bool, timeout: float, log: t.Callable[[str], None]
) -> None:
    def once(v: Variant) -> Run:
        if v.reset is not None:
            v.reset()
        env = generate.flask_env(v.url)
        return measure(v.argv, v.cwd, env, timeout, v.inner, v.copies)

    for v in case.variants if warmup else ():  # .pyc files, page and database caches
        once(v)
    for i in range(n):
        k = i % len(case.variants)
        for v in case.variants[k:] + case.variants[:k]:
            v.runs.append(once(v))
    parts = [
        f"{v.name} {statistics.median(r.wall for r in v.runs):.3f}s"
        for v in case.variants
    ]
    log(f"  {case.workload} {case.title} [{case.backend}]: {', '.join(parts)}")
