"""Progress with ``--jobs``: the workers' events displayed by the ``flask db``
process, without a terminal (one whole line per revision, naming its
target), with ``-q``, and given to a Python listener in the calling process.

The line in place on a terminal is in ``e2e/test_jobs_progress_terminal.py``.
"""

from __future__ import annotations

import io
import os
import re
import time
import typing as t
from pathlib import Path

import pytest
from flask import Flask
from test_jobs import make_tenant_app
from test_jobs import versions_in

from flask_migrate_ext import api
from flask_migrate_ext import progress
from flask_migrate_ext.cli.progress_display import TargetsDisplay
from helpers import invoke
from helpers import ok

if t.TYPE_CHECKING:
    from helpers import MultidbFactory

pytestmark = pytest.mark.usefixtures("restore_logging")
server = pytest.mark.server

SCHEMAS = ["tenant_01", "tenant_02", "tenant_03"]
#: ``[2/3] tenant_01: r1 -> r2 r2 (0.01 s)``
LINE = re.compile(r"\[(\d)/3\] (tenant_0\d): (\S+) -> (r\d) (r\d) \(\d+\.\d\d s\)")


@pytest.fixture
def tenants(make_database: t.Any, tmp_path: Path) -> t.Iterator[tuple[Flask, str]]:
    url = make_database("postgresql")
    app = make_tenant_app(url, tmp_path, SCHEMAS)
    app.config["MIGRATE_SCHEMAS"] = SCHEMAS
    yield app, url
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def progress_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(r"\[\d+/\d+\]", line)]


@server
def test_a_whole_line_per_revision_and_target(tenants: tuple[Flask, str]) -> None:
    app, _ = tenants
    result = ok(invoke(app, "upgrade", "--jobs", "2"))
    lines = result.stderr.splitlines()
    shown = progress_lines(result.stderr)
    assert len(shown) == 3 * len(SCHEMAS), result.stderr
    for schema in SCHEMAS:
        # Each line whole, in the order the revisions ran.
        matches = [LINE.fullmatch(line) for line in shown if schema in line]
        assert all(matches), shown
        found = [m.group(1, 3, 4) for m in matches if m]
        assert found == [("1", "base", "r1"), ("2", "r1", "r2"), ("3", "r2", "r3")]
        # Printed as the revisions ran, before the target's own messages
        # (captured in its worker, which printed no progress of its own).
        own = lines.index(f"Schema {schema}:")
        end = next(
            i for i, line in enumerate(lines) if line.startswith(f"schema {schema}: ")
        )
        assert lines.index(next(line for line in shown if schema in line)) < own
        assert progress_lines("\n".join(lines[own:end])) == []
    assert lines[-1].startswith("3 targets: 3 upgraded (")

    # -q: the rest as it was, no progress.
    result = ok(invoke(app, "downgrade", "base", "--jobs", "2", "-q"))
    assert progress_lines(result.stderr) == []
    assert "schema tenant_02: r3 -> base (3 revisions," in result.stderr
    assert result.stderr.splitlines()[-1].startswith("3 targets: 3 downgraded (")


@server
def test_the_listener_is_called_in_this_process(tenants: tuple[Flask, str]) -> None:
    app, _ = tenants
    seen: list[tuple[int, progress.ProgressEvent]] = []
    with app.app_context():
        api.upgrade(jobs=2, progress=lambda event: seen.append((os.getpid(), event)))
    assert {pid for pid, _ in seen} == {os.getpid()}
    events = [event for _, event in seen]
    assert events[0] == progress.TargetsStarted(total=3, jobs=2)
    ended = [e for e in events if isinstance(e, progress.TargetFinished)]
    assert [(e.done, e.total, e.status) for e in ended] == [
        (1, 3, "done"),
        (2, 3, "done"),
        (3, 3, "done"),
    ]
    assert sorted(e.target for e in ended) == SCHEMAS
    for schema in SCHEMAS:
        mine = [
            type(e).__name__
            for e in events
            if getattr(e, "target", None) == schema
            and not isinstance(e, progress.TargetsStarted)
        ]
        assert mine == [
            "RunStarted",
            *["RevisionStarted", "RevisionFinished"] * 3,
            "RunFinished",
            "TargetFinished",
        ]


@server
def test_a_listener_error_stops_new_targets(
    make_database: t.Any, tmp_path: Path
) -> None:
    schemas = [*SCHEMAS, "tenant_05"]
    url = make_database("postgresql")
    app = make_tenant_app(url, tmp_path, schemas)

    def refuse(event: progress.ProgressEvent) -> None:
        if isinstance(event, progress.RevisionFinished):
            raise ValueError("listener says no")

    try:
        with app.app_context(), pytest.raises(ValueError, match="listener says no"):
            api.upgrade(schemas=schemas, jobs=2, progress=refuse)
    finally:
        with app.app_context():
            app.extensions["test_db"].engine.dispose()
    # The two running finished; no other started.
    assert versions_in(url, schemas) == {
        "tenant_01": ["r3"],
        "tenant_02": ["r3"],
        "tenant_03": [],
        "tenant_05": [],
    }


def test_binds_are_named(make_multidb_app: MultidbFactory, tmp_path: Path) -> None:
    urls = {"": f"sqlite:///{tmp_path / 'main.db'}"}
    urls["users"] = f"sqlite:///{tmp_path / 'users.db'}"
    app = make_multidb_app(urls)
    ok(invoke(app, "init", "--multidb"))
    ok(invoke(app, "migrate", "-m", "initial"))
    result = ok(invoke(app, "upgrade", "-j", "2"))
    shown = progress_lines(result.stderr)
    assert sorted(line.split(":")[0] for line in shown) == [
        "[1/1] default",
        "[1/1] users",
    ]


def test_the_line_in_place_fits_the_width() -> None:
    display = TargetsDisplay(io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    display(progress.TargetsStarted(total=20, jobs=3))
    now = time.monotonic()
    schemas = ["tenant_01", "tenant_02", "tenant_03"]
    for n, schema in enumerate(schemas, start=1):
        display(progress.RunStarted("upgrade", schema, True, 10))
        started = progress.RevisionStarted(
            action="upgrade",
            target=schema,
            several=True,
            index=n,
            total=10,
            revision=f"abc{n}",
            source=("x",),
            destination=(f"abc{n}",),
            message="add a users table with a long message",
            started=now - 1.5,
        )
        display(started)
    display(progress.TargetFinished("tenant_00", "done", 1, 20))
    first, second, third = (
        f"{schema} [{n}/10] abc{n} add a users table wit... (1.5"
        for n, schema in enumerate(schemas, start=1)
    )
    line = display._line(200)
    assert line is not None and line.startswith(f"[1/20 targets] {first}")
    assert f" · {second}" in line and f" · {third}" in line
    line = display._line(len(line) - 1)
    assert line is not None and f" · {second}" in line and line.endswith(" · +1")
    line = display._line(40)
    assert line == f"[1/20 targets] {first}"[:40]
    # Their runs over: the count only; all ended: nothing.
    for schema in schemas:
        display(progress.RunFinished("upgrade", schema, True, 10, 10, 2.0, True))
    assert display._line(200) == "[1/20 targets]"
    display(progress.TargetFinished("tenant_19", "done", 20, 20))
    assert display._line(200) is None
