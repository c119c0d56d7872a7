"""The API over many targets: per-target results, the worst exit code,
``jobs`` and ``continue_on_error``; tenant schemas on PostgreSQL."""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

import pytest
from flask import Flask

from flask_migrate_ext import check
from flask_migrate_ext import current
from flask_migrate_ext import downgrade
from flask_migrate_ext import ExitCode
from flask_migrate_ext import upgrade
from flask_migrate_ext.errors import SettingsError
from flask_migrate_ext.errors import SEVERITY
from flask_migrate_ext.errors import TargetsFailedError
from flask_migrate_ext.errors import worst
from flask_migrate_ext.settings import Settings

sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))
from test_jobs import FAILING  # noqa: E402
from test_jobs import make_tenant_app  # noqa: E402
from test_jobs import versions_in  # noqa: E402

server = pytest.mark.server
SCHEMAS = ["tenant_01", "tenant_02", FAILING, "tenant_05", "tenant_06"]


@pytest.fixture
def app(make_database: t.Any, tmp_path: Path) -> t.Iterator[tuple[Flask, str]]:
    url = make_database("postgresql")
    app = make_tenant_app(url, tmp_path, SCHEMAS)
    yield app, url
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


@server
@pytest.mark.parametrize("jobs", [1, 2])
def test_results_per_target(app: tuple[Flask, str], jobs: int) -> None:
    flask_app, url = app
    good = [s for s in SCHEMAS if s != FAILING]
    with flask_app.app_context():
        result = upgrade(schemas=good, jobs=jobs)
    assert [(t.label, t.schema, t.status) for t in result.targets] == [
        (f"schema {s}", s, "done") for s in good
    ]
    first = result.targets[0]
    assert (first.before, first.after, first.exit_code) == ((), ("r3",), 0)
    assert [step.revision for step in first.steps] == ["r1", "r2", "r3"]
    assert {step.schema for step in first.steps} == {"tenant_01"}
    assert first.seconds > 0 and first.error is None
    # The steps of every target, as before.
    assert [(s.schema, s.revision) for s in result.steps][:4] == [
        ("tenant_01", "r1"),
        ("tenant_01", "r2"),
        ("tenant_01", "r3"),
        ("tenant_02", "r1"),
    ]

    with flask_app.app_context():
        result = downgrade(revision="r2", schemas=good, jobs=jobs)
        assert [t.after for t in result.targets] == [("r2",)] * len(good)
        states = current(schemas=good, jobs=jobs)
    assert [(s.schema, s.ids) for s in states] == [(s, ("r2",)) for s in good]


@server
@pytest.mark.parametrize("jobs", [1, 3])
def test_failed_target_continue_on_error(app: tuple[Flask, str], jobs: int) -> None:
    flask_app, url = app
    with flask_app.app_context(), pytest.raises(TargetsFailedError) as info:
        upgrade(schemas=SCHEMAS, jobs=jobs, continue_on_error=True)
    error = info.value
    assert error.exit_code == ExitCode.ERROR
    by_schema = {t.schema: t for t in error.targets}
    failed = by_schema[FAILING]
    assert failed.status == "failed"
    assert failed.exit_code == ExitCode.ERROR
    assert failed.error is not None
    assert failed.error.startswith("Revision r2 failed:")
    assert "Revision r2 was rolled back; the database is at r1." in failed.error
    assert failed.after == ("r1",)  # what it left, read after the failure
    assert "Traceback" in (failed.traceback or "")
    assert all(by_schema[s].status == "done" for s in SCHEMAS if s != FAILING)
    assert versions_in(url, SCHEMAS) == {
        s: ["r1"] if s == FAILING else ["r3"] for s in SCHEMAS
    }
    # The error's result is the run's: the steps of the targets that finished.
    assert {s.schema for s in error.result.steps} == set(SCHEMAS) - {FAILING}


@server
def test_stop_on_error_skips_the_rest(app: tuple[Flask, str]) -> None:
    flask_app, url = app
    with flask_app.app_context(), pytest.raises(TargetsFailedError) as info:
        upgrade(schemas=SCHEMAS)
    statuses = [t.status for t in info.value.targets]
    assert statuses == ["done", "done", "failed", "skipped", "skipped"]
    assert "2 not started" in str(info.value)
    assert versions_in(url, ["tenant_05"]) == {"tenant_05": []}


@server
def test_check_over_tenants(app: tuple[Flask, str]) -> None:
    flask_app, url = app
    with flask_app.app_context():
        upgrade(schemas=["tenant_01"])
    with flask_app.app_context(), pytest.raises(TargetsFailedError) as info:
        check(schemas=["tenant_01", "tenant_05"], jobs=2, continue_on_error=True)
    # The app has no models: tenant_01 drifts (3), tenant_05 is behind (4).
    assert [t.exit_code for t in info.value.targets] == [3, 4]
    assert info.value.exit_code == ExitCode.SCHEMA_DRIFT
    assert "- table item" in (info.value.targets[0].error or "")


def test_bad_jobs_in_the_api(app_and_db: t.Any) -> None:
    flask_app = app_and_db[0]
    with flask_app.app_context():
        with pytest.raises(ValueError, match="1 or more, not 0"):
            upgrade(jobs=0)
        with pytest.raises(ValueError, match="sql=True"):
            upgrade(sql=True, jobs=2)


@pytest.fixture
def app_and_db(make_app: t.Any, tmp_path: Path) -> t.Any:
    app = make_app(f"sqlite:///{tmp_path / 'app.db'}")
    return app, None


def test_worst_exit_code() -> None:
    assert worst([]) == ExitCode.OK
    assert worst([4, 1, 3]) == ExitCode.ERROR
    assert worst([1, 6, 7]) == ExitCode.PARTIALLY_APPLIED
    assert worst([6, 130]) == ExitCode.INTERRUPTED
    assert worst([3, 4]) == ExitCode.SCHEMA_DRIFT
    assert worst([99]) == ExitCode.ERROR
    assert set(SEVERITY) == set(ExitCode)


def test_schemas_setting_takes_a_function() -> None:
    def names() -> list[str]:
        return ["a"]

    assert Settings.from_config({"MIGRATE_SCHEMAS": names}).schemas is names
    for wrong in ("a", 3, [1], str):
        with pytest.raises(SettingsError, match="a function returning them"):
            Settings.from_config({"MIGRATE_SCHEMAS": wrong})
