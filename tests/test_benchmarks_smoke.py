"""The benchmark must keep working: one quick run (tiny sizes, SQLite, both extensions).

Timing targets live in the benchmark's own report, not here: this only checks that
every workload runs for both extensions and the results are written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUNNER = REPO / "benchmarks" / "run.py"

# Two runners side by side (2 cores): the quick run is ~40 processes.
SHARDS = [["W1", "W4", "F"], ["W2", "W3"]]


def test_quick_benchmark_runs_every_workload(tmp_path: Path) -> None:
    if not RUNNER.exists():
        pytest.skip("benchmarks/ is not part of this checkout")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [os.fspath(REPO), *filter(None, [env.get("PYTHONPATH")])]
    )
    procs = []
    for i, shard in enumerate(SHARDS):
        out = tmp_path / f"shard{i}"
        args = [sys.executable, os.fspath(RUNNER), "--quick", "-b", "sqlite"]
        for workload in shard:
            args += ["-w", workload]
        args += ["--output-dir", os.fspath(out)]
        procs.append(
            (
                out,
                shard,
                subprocess.Popen(
                    args,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
        )
    seen: set[str] = set()
    for out, shard, proc in procs:
        try:
            output, _ = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        assert proc.returncode == 0, output
        [result] = out.glob("*.json")
        data = json.loads(result.read_text())
        assert list(out.glob("*.md"))
        rows = data["results"]
        assert {row["workload"] for row in rows} == set(shard)
        for row in rows:
            names = set(row["variants"])
            if row["workload"] != "F" and not row["key"].endswith(".floor"):
                assert {"ext", "fm"} <= names, row["key"]
            for summary in row["variants"].values():
                assert summary["n"] == 1
                assert summary["median"] > 0
                assert summary["rss_mb_median"] > 0
        seen |= {row["workload"] for row in rows}
    assert seen == {"W1", "W2", "W3", "W4", "F"}
