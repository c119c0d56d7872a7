"""``--json`` on the inspecting commands: the documented schema, on a straight
history and on one with a branch point and a merge."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_migrate_ext import ExitCode
from helpers import AppFactory
from helpers import invoke
from helpers import write_revision

REVISION_KEYS = {
    "id",
    "message",
    "doc",
    "path",
    "down_revisions",
    "branch_labels",
    "depends_on",
    "children",
    "is_head",
    "is_base",
    "is_branch_point",
    "is_merge_point",
    "is_current",
}


def as_json(app: Flask, *args: str, exit_code: int = 0) -> dict[str, t.Any]:
    """Run ``flask db <args> --json``; check the envelope and return the document."""
    result = invoke(app, *args, "--json")
    assert result.exit_code == exit_code, result.output
    document = json.loads(result.stdout)
    assert document["schema"] == 1
    assert document["command"] == args[0]
    for revision in document.get("revisions", []):
        assert set(revision) == REVISION_KEYS
    for database in document.get("databases", []):
        if isinstance(database, dict):
            for revision in database["revisions"]:
                assert set(revision) == REVISION_KEYS
    return t.cast("dict[str, t.Any]", document)


def ids(document: dict[str, t.Any]) -> list[str]:
    return [revision["id"] for revision in document["revisions"]]


@pytest.fixture
def app(make_app: AppFactory, sqlite_url: str) -> Flask:
    app = make_app(sqlite_url)
    assert invoke(app, "init").exit_code == 0
    return app


@pytest.fixture
def versions(tmp_path: Path) -> Path:
    return tmp_path / "migrations" / "versions"


def straight(versions: Path) -> None:
    write_revision(versions, "r1", None, "pass", "pass")
    write_revision(versions, "r2", "r1", "pass", "pass")


def branched(versions: Path) -> None:
    """r1 branches into r2 and r3, which r4 merges."""
    write_revision(versions, "r1", None, "pass", "pass")
    write_revision(versions, "r2", "r1", "pass", "pass")
    write_revision(versions, "r3", "r1", "pass", "pass")
    write_revision(versions, "r4", ("r2", "r3"), "pass", "pass")


def test_straight_history(app: Flask, versions: Path) -> None:
    straight(versions)
    for _ in range(2):  # through Alembic, then from the revision cache
        heads = as_json(app, "heads")
        assert ids(heads) == ["r2"]
        (head,) = heads["revisions"]
        assert head["down_revisions"] == ["r1"]
        assert head["is_head"] and not head["is_base"]
        assert head["message"] == "r2"
        assert head["path"] == str((versions / "r2.py").resolve())
        assert head["is_current"] is None
        history = as_json(app, "history")
        assert ids(history) == ["r2", "r1"]
        assert history["revisions"][1]["children"] == ["r2"]
        assert as_json(app, "branches")["revisions"] == []


def test_branch_and_merge(app: Flask, versions: Path) -> None:
    branched(versions)
    history = as_json(app, "history")
    assert ids(history)[0] == "r4" and ids(history)[-1] == "r1"
    by_id = {revision["id"]: revision for revision in history["revisions"]}
    assert by_id["r4"]["is_merge_point"]
    assert sorted(by_id["r4"]["down_revisions"]) == ["r2", "r3"]
    assert by_id["r1"]["is_branch_point"] and by_id["r1"]["is_base"]
    assert sorted(by_id["r1"]["children"]) == ["r2", "r3"]

    branches = as_json(app, "branches")
    assert ids(branches) == ["r1"]
    assert sorted(branches["revisions"][0]["children"]) == ["r2", "r3"]
    assert ids(as_json(app, "heads")) == ["r4"]
    assert ids(as_json(app, "show", "r4")) == ["r4"]
    assert ids(as_json(app, "history", "-r", "r2:r4")) == ["r4", "r2"]


def test_current_and_indicate_current(app: Flask, versions: Path) -> None:
    branched(versions)
    current = as_json(app, "current")
    (database,) = current["databases"]
    assert database["name"] == "" and database["schema"] is None
    assert database["revisions"] == []
    assert database["url"].startswith("sqlite:///")

    assert invoke(app, "upgrade", "r2").exit_code == 0
    (database,) = as_json(app, "current")["databases"]
    assert [revision["id"] for revision in database["revisions"]] == ["r2"]
    marked = {
        revision["id"]: revision["is_current"]
        for revision in as_json(app, "history", "-i")["revisions"]
    }
    assert marked == {"r1": False, "r2": True, "r3": False, "r4": False}
    assert ids(as_json(app, "show", "current")) == ["r2"]


@pytest.mark.server
@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_current_hides_the_password(make_app: AppFactory, database_url: str) -> None:
    url = sa.make_url(database_url).set(password="s3cret")
    app = make_app(url.render_as_string(hide_password=False))
    assert invoke(app, "init").exit_code == 0
    result = invoke(app, "current", "--json")
    assert "s3cret" not in result.output


def test_check(make_app: AppFactory, sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    assert invoke(app, "init").exit_code == 0
    assert invoke(app, "migrate", "-m", "initial").exit_code == 0

    behind = as_json(app, "check", exit_code=ExitCode.NOT_UP_TO_DATE)
    assert behind["ok"] is False and behind["error"] == "not-up-to-date"
    assert behind["exit_code"] == ExitCode.NOT_UP_TO_DATE
    assert behind["changes"] == []

    assert invoke(app, "upgrade").exit_code == 0
    passed = as_json(app, "check")
    assert passed == {"schema": 1, "command": "check", "ok": True, "databases": [""]}

    drifted_app = make_app(sqlite_url, columns={"email": sa.Column(sa.String(80))})
    result = invoke(drifted_app, "check", "--json")
    assert result.exit_code == ExitCode.SCHEMA_DRIFT
    drift = json.loads(result.stdout)
    assert drift["ok"] is False and drift["error"] == "drift"
    assert drift["exit_code"] == ExitCode.SCHEMA_DRIFT
    assert "+ column employee.email VARCHAR(80)" in drift["changes"]
    # The diagnostic still goes to stderr, as without --json.
    assert "Error: The models differ" in result.stderr


def test_errors_are_not_json(app: Flask) -> None:
    result = invoke(app, "show", "nope", "--json")
    assert result.exit_code == ExitCode.ERROR
    assert result.stdout == ""
    assert "nope" in result.stderr
