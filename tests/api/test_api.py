"""The in-process Python API: return values, printed output and typed errors.

``flask_migrate_ext.api`` returns data and prints nothing; the package-level
names Flask-Migrate users import print what Flask-Migrate prints.

Mostly on SQLite; one test checks the run results on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

import flask_migrate_ext
from flask_migrate_ext import api
from flask_migrate_ext import CommandFailedError
from flask_migrate_ext import DirectoryExistsError
from flask_migrate_ext import DirectoryNotFoundError
from flask_migrate_ext import downgrade
from flask_migrate_ext import ExitCode
from flask_migrate_ext import init
from flask_migrate_ext import merge
from flask_migrate_ext import Migrate
from flask_migrate_ext import migrate
from flask_migrate_ext import MigrateError
from flask_migrate_ext import NotInitializedError
from flask_migrate_ext import NotUpToDateError
from flask_migrate_ext import revision
from flask_migrate_ext import RevisionNotFoundError
from flask_migrate_ext import RunResult
from flask_migrate_ext import SchemaDriftError
from flask_migrate_ext import stamp
from flask_migrate_ext import Step
from flask_migrate_ext import TemplateNotFoundError
from flask_migrate_ext import upgrade
from flask_migrate_ext.api import branches
from flask_migrate_ext.api import BranchPoint
from flask_migrate_ext.api import check
from flask_migrate_ext.api import CheckResult
from flask_migrate_ext.api import current
from flask_migrate_ext.api import DatabaseState
from flask_migrate_ext.api import heads
from flask_migrate_ext.api import history
from flask_migrate_ext.api import list_templates
from flask_migrate_ext.api import Revision
from flask_migrate_ext.api import show
from flask_migrate_ext.api import Template
from helpers import AppFactory
from helpers import invoke
from helpers import MultidbFactory
from helpers import table_names
from helpers import version_rows


def _name_only() -> dict[str, t.Any]:
    return {"name": sa.Column(sa.String(50))}


def _with_email() -> dict[str, t.Any]:
    return {"name": sa.Column(sa.String(50)), "email": sa.Column(sa.String(80))}


def _rev_id(path: str | None) -> str:
    assert path is not None
    return Path(path).name.split("_")[0]


def _version_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "migrations" / "versions").glob("*.py"))


def _ids(revisions: t.Iterable[Revision]) -> list[str]:
    return [rev.id for rev in revisions]


def _current_ids() -> list[str]:
    """The ids ``current()`` found, over every database."""
    return [rev_id for state in current() for rev_id in state.ids]


def _column_names(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


# -- import cost and exports ---------------------------------------------------


def test_import_and_setup_do_not_import_alembic(tmp_path: Path) -> None:
    code = "\n".join(
        [
            "import sys",
            "from flask import Flask",
            "from flask_sqlalchemy import SQLAlchemy",
            "import flask_migrate_ext",
            "from flask_migrate_ext import Migrate, MigrateError, NotUpToDateError",
            "app = Flask('lazy')",
            "app.config['SQLALCHEMY_DATABASE_URI'] = 'sqlite://'",
            "db = SQLAlchemy(app)",
            "Migrate(app, db)",
            "assert 'db' in app.cli.list_commands(None)",
            "loaded = sorted(m for m in sys.modules if m.startswith('alembic'))",
            "assert not loaded, loaded",
            # The API is still there, loaded on first use (upgrade needs
            # Alembic only when there is something to upgrade).
            "flask_migrate_ext.upgrade",
            "assert 'alembic' not in sys.modules",
            "flask_migrate_ext.downgrade",
            "assert 'alembic' in sys.modules",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_config_is_an_alembic_config_with_template_directory(tmp_path: Path) -> None:
    from alembic.config import Config as AlembicConfig

    from flask_migrate_ext import Config

    assert issubclass(Config, AlembicConfig)
    custom = Config(template_directory=os.fspath(tmp_path))
    assert custom.template_directory == os.fspath(tmp_path)
    assert custom.get_template_directory() == os.fspath(tmp_path)
    default = Config()
    assert default.template_directory is None
    assert os.path.isdir(os.path.join(default.get_template_directory(), "flask"))


def test_list_templates(capsys: pytest.CaptureFixture[str]) -> None:
    # Needs no app context, like Flask-Migrate's.
    templates = list_templates()
    assert Template("flask", "Single-database configuration for Flask.") in templates
    assert [tm.name for tm in templates] == sorted(tm.name for tm in templates)
    assert capsys.readouterr().out == ""
    assert flask_migrate_ext.list_templates() == templates
    out = capsys.readouterr().out
    assert out.startswith("Available templates:\n\n")
    assert "flask - Single-database configuration for Flask.\n" in out


# -- init ----------------------------------------------------------------------


def test_init_returns_directory(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    with app.app_context():
        assert init() == "migrations"
        assert (tmp_path / "migrations" / "env.py").is_file()
        other = tmp_path / "other"
        assert init(directory=other) == os.fspath(other)
        assert (other / "alembic.ini").is_file()


def test_init_twice_raises_directory_exists(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = make_app(sqlite_url)
    with app.app_context():
        init()
        with pytest.raises(DirectoryExistsError):
            init()


def test_init_unknown_template_raises(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    with app.app_context():
        with pytest.raises(TemplateNotFoundError):
            init(template="nosuch")
    assert not (tmp_path / "migrations").exists()


# -- errors before init, and without the extension -----------------------------

BEFORE_INIT: dict[str, t.Callable[[], object]] = {
    "upgrade": lambda: upgrade(),
    "downgrade": lambda: downgrade(),
    "stamp": lambda: stamp(),
    "current": lambda: current(),
    "heads": lambda: heads(),
    "history": lambda: history(),
    "show": lambda: show(),
    "branches": lambda: branches(),
    "migrate": lambda: migrate(),
    "revision": lambda: revision(),
    "merge": lambda: merge(revisions="heads"),
    "check": lambda: check(),
}


@pytest.mark.parametrize("name", sorted(BEFORE_INIT))
def test_command_before_init_raises_directory_not_found(
    make_app: AppFactory, sqlite_url: str, name: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    with app.app_context():
        with pytest.raises(DirectoryNotFoundError) as info:
            BEFORE_INIT[name]()
    assert "migrations" in str(info.value)
    assert not (tmp_path / "migrations").exists()


@pytest.mark.parametrize("name", ["init", "upgrade", "current", "migrate", "check"])
def test_app_without_extension_raises_not_initialized(
    name: str, tmp_path: Path
) -> None:
    calls: dict[str, t.Callable[[], object]] = {
        "init": lambda: init(),
        "upgrade": lambda: upgrade(),
        "current": lambda: current(),
        "migrate": lambda: migrate(),
        "check": lambda: check(),
    }
    app = Flask("plain", root_path=os.fspath(tmp_path))
    with app.app_context():
        with pytest.raises(NotInitializedError) as info:
            calls[name]()
    assert info.value.exit_code == ExitCode.USAGE


def test_app_with_flask_migrate_extension_raises_not_initialized(
    tmp_path: Path, sqlite_url: str
) -> None:
    import flask_migrate

    app = Flask("fm", root_path=os.fspath(tmp_path))
    flask_migrate.Migrate().init_app(app)
    with app.app_context():
        with pytest.raises(NotInitializedError):
            upgrade()


def test_migrate_without_db_raises_not_initialized(
    tmp_path: Path, sqlite_url: str
) -> None:
    app = Flask("nodb", root_path=os.fspath(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = sqlite_url
    Migrate(app)
    with app.app_context():
        # Creating the directory needs no database.
        init()
        with pytest.raises(NotInitializedError):
            upgrade()
        with pytest.raises(NotInitializedError):
            current()


# -- the main flow -------------------------------------------------------------


def test_api_flow_return_values(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url, columns=_name_only())
    with app.app_context():
        init()
        assert _current_ids() == []
        assert _ids(heads()) == []
        assert _ids(history()) == []

        path1 = migrate(message="initial")
        assert path1 is not None and os.path.isfile(path1)
        assert Path(path1).parent == tmp_path / "migrations" / "versions"
        rev1 = _rev_id(path1)
        assert "op.create_table('employee'" in Path(path1).read_text()
        assert version_rows(sqlite_url) == []

        result = upgrade()
        assert isinstance(result, RunResult)
        assert result.steps == [Step("upgrade", rev1, (), (rev1,), "initial")]
        assert "employee" in table_names(sqlite_url)
        assert version_rows(sqlite_url) == [rev1]

        # Already at head: nothing to do, no error.
        assert upgrade().steps == []

        assert _current_ids() == [rev1]
        assert _ids(heads()) == [rev1]
        assert _ids(show()) == [rev1]
        assert _ids(show(revision="current")) == [rev1]
        assert _ids(history()) == [rev1]

        # No model change: no file.
        assert migrate(message="nothing") is None
        assert revision(message="nothing", autogenerate=True) is None
        assert _version_files(tmp_path) == [Path(path1)]
        check()

    app2 = make_app(sqlite_url, columns=_with_email())
    with app2.app_context():
        with pytest.raises(SchemaDriftError) as drift:
            check()
        assert drift.value.lines == ["+ column employee.email VARCHAR(80)"]
        assert drift.value.diffs
        assert drift.value.exit_code == ExitCode.SCHEMA_DRIFT == 3
        assert "+ column employee.email VARCHAR(80)" in str(drift.value)

        path2 = migrate(message="add email")
        rev2 = _rev_id(path2)
        assert "add_column" in Path(t.cast(str, path2)).read_text()

        # The database is behind the new head.
        with pytest.raises(NotUpToDateError) as behind:
            migrate(message="too early")
        assert behind.value.exit_code == ExitCode.NOT_UP_TO_DATE == 4
        with pytest.raises(NotUpToDateError):
            check()
        assert len(_version_files(tmp_path)) == 2

        assert _ids(heads()) == [rev2]
        assert _ids(history()) == [rev2, rev1]
        assert _ids(history(rev_range=f"base:{rev1}")) == [rev1]
        assert _current_ids() == [rev1]

        result = upgrade()
        assert result.steps == [Step("upgrade", rev2, (rev1,), (rev2,), "add email")]
        assert result.initial == (rev1,)
        assert "email" in _column_names(sqlite_url, "employee")
        assert _ids(history(rev_range="current:")) == [rev2]
        check()

        # One step back by default: the step reverted is rev2's.
        result = downgrade()
        assert result.steps == [Step("downgrade", rev2, (rev2,), (rev1,), "add email")]
        assert _current_ids() == [rev1]
        assert "email" not in _column_names(sqlite_url, "employee")

        result = downgrade(revision="base")
        assert result.steps == [Step("downgrade", rev1, (rev1,), (), "initial")]
        assert _current_ids() == []
        assert version_rows(sqlite_url) == []
        assert "employee" not in table_names(sqlite_url)

        # At base there is nothing to revert: an error, not an exit.
        with pytest.raises(CommandFailedError):
            downgrade()

        # Up to a given revision.
        result = upgrade(revision=rev1)
        assert [s.revision for s in result.steps] == [rev1]
        assert _current_ids() == [rev1]


def test_stamp_returns_steps_without_running_migrations(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = make_app(sqlite_url)
    with app.app_context():
        init()
        rev = _rev_id(migrate(message="initial"))

        result = stamp()
        assert result.steps == [Step("stamp", rev, (), (rev,), "initial")]
        assert _current_ids() == [rev]
        assert version_rows(sqlite_url) == [rev]
        assert "employee" not in table_names(sqlite_url)

        result = stamp(revision="base")
        assert len(result.steps) == 1
        assert result.steps[0].action == "stamp"
        assert result.steps[0].source == (rev,)
        assert result.steps[0].destination == ()
        assert _current_ids() == []


def test_revision_merge_and_branches(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    with app.app_context():
        init()
        path = revision(message="base", rev_id="aaa")
        assert path is not None and os.path.isfile(path)
        assert Path(path).name == "aaa_base.py"
        assert revision(message="left", rev_id="bbb") is not None
        assert revision(message="right", rev_id="ccc", head="aaa", splice=True)

        assert sorted(_ids(heads())) == ["bbb", "ccc"]
        assert _ids(branches()) == ["aaa"]
        (point,) = branches()
        assert isinstance(point, BranchPoint)
        assert point.is_branch_point and sorted(point.children) == ["bbb", "ccc"]
        assert sorted(_ids(point.branches)) == ["bbb", "ccc"]

        merged = merge(revisions="heads", message="join", rev_id="ddd")
        assert merged is not None and Path(merged).name == "ddd_join.py"
        assert os.path.isfile(merged)
        assert _ids(heads()) == ["ddd"]
        assert _ids(history())[0] == "ddd"
        assert sorted(_ids(history())) == ["aaa", "bbb", "ccc", "ddd"]
        (merge_point,) = heads()
        assert merge_point.is_merge_point and merge_point.message == "join"
        assert sorted(merge_point.down_revisions) == ["bbb", "ccc"]

        # Only one head left: nothing to merge.
        with pytest.raises(CommandFailedError):
            merge()

        result = upgrade()
        assert [s.action for s in result.steps] == ["upgrade"] * 4
        assert result.steps[0].revision == "aaa"
        assert {s.revision for s in result.steps[1:3]} == {"bbb", "ccc"}
        assert result.steps[-1].revision == "ddd"
        assert set(result.steps[-1].source) == {"bbb", "ccc"}
        assert result.steps[-1].destination == ("ddd",)
        assert _current_ids() == ["ddd"]


def test_merge_without_revisions_merges_the_heads(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = make_app(sqlite_url)
    with app.app_context():
        init()
        revision(message="base", rev_id="aaa")
        revision(message="left", rev_id="bbb")
        revision(message="right", rev_id="ccc", head="aaa", splice=True)
        merged = merge(message="join", rev_id="ddd")
        assert merged is not None
        assert _ids(heads()) == ["ddd"]
        text = Path(merged).read_text()
        assert "Revises: bbb, ccc" in text
        assert "= ('bbb', 'ccc')" in text


def test_unknown_revision_raises_revision_not_found(
    make_app: AppFactory, sqlite_url: str
) -> None:
    app = make_app(sqlite_url)
    with app.app_context():
        init()
        migrate(message="initial")
        with pytest.raises(RevisionNotFoundError) as info:
            upgrade(revision="nope")
        assert "nope" in str(info.value)
        assert isinstance(info.value, MigrateError)
        with pytest.raises(RevisionNotFoundError):
            downgrade(revision="nope")
        with pytest.raises(RevisionNotFoundError):
            show(revision="nope")
        with pytest.raises(RevisionNotFoundError):
            stamp(revision="nope")
        assert _current_ids() == []


def test_bad_history_range_raises(make_app: AppFactory, sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    with app.app_context():
        init()
        with pytest.raises(CommandFailedError):
            history(rev_range="nocolon")


# -- printed output ------------------------------------------------------------


def test_api_prints_nothing_and_package_functions_print_as_the_cli(
    make_app: AppFactory, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(sqlite_url)
    with app.app_context():
        init()
        rev = _rev_id(migrate(message="initial"))
        upgrade()
    capsys.readouterr()

    cases: list[tuple[str, dict[str, t.Any], list[str]]] = [
        ("current", {}, ["current"]),
        ("current", {"verbose": True}, ["current", "-v"]),
        ("heads", {}, ["heads"]),
        ("heads", {"verbose": True}, ["heads", "-v"]),
        ("history", {}, ["history"]),
        ("history", {"verbose": True}, ["history", "-v"]),
        ("history", {"indicate_current": True}, ["history", "-i"]),
        ("history", {"rev_range": "base:"}, ["history", "-r", "base:"]),
        ("show", {}, ["show"]),
        ("branches", {}, ["branches"]),
        ("list_templates", {}, ["list-templates"]),
    ]
    for name, kwargs, args in cases:
        with app.app_context():
            data = getattr(api, name)(**kwargs)
            assert capsys.readouterr().out == "", name
            assert getattr(flask_migrate_ext, name)(**kwargs) == data, name
        printed = capsys.readouterr().out
        result = invoke(app, *args)
        assert result.exit_code == 0, result.output
        assert printed == result.stdout, args

    with app.app_context():
        flask_migrate_ext.current()
    assert capsys.readouterr().out == f"{rev} (head)\n"
    with app.app_context():
        flask_migrate_ext.history()
    assert capsys.readouterr().out == f"<base> -> {rev} (head), initial\n"
    with app.app_context():
        assert check() == CheckResult(databases=("",))
        assert capsys.readouterr().out == ""
        assert flask_migrate_ext.check() == CheckResult(databases=("",))
    assert capsys.readouterr().out == "No new upgrade operations detected.\n"


def test_flask_migrate_names_are_the_printing_functions() -> None:
    from flask_migrate_ext import compat
    from flask_migrate_ext.scripts import quick  # the subpackage, imported

    names = ["branches", "check", "current", "heads", "history", "list_templates"]
    for name in [*names, "show"]:
        assert getattr(flask_migrate_ext, name) is getattr(compat, name), name
    assert quick.straight_history


def test_results_describe_the_revisions(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    with app.app_context():
        init()
        path = revision(message="create tables", rev_id="aaa")
        revision(message="add index", rev_id="bbb")
        (head,) = heads()
        base = show(revision="aaa")[0]
        assert base == history()[1]
        assert isinstance(base, Revision)
        assert (base.id, base.down_revisions, base.children) == ("aaa", (), ("bbb",))
        assert base.message == "create tables"
        assert base.doc.startswith("create tables\n\nRevision ID: aaa")
        assert base.path == path
        assert (base.is_base, base.is_head, base.is_current) == (True, False, None)
        assert (head.id, head.down_revisions, head.is_head) == ("bbb", ("aaa",), True)
        with pytest.raises(dataclasses.FrozenInstanceError):
            head.id = "ccc"  # type: ignore[misc]

        upgrade(revision="aaa")
        marked = {rev.id: rev.is_current for rev in history(indicate_current=True)}
        assert marked == {"aaa": True, "bbb": False}
        (state,) = current()
        assert isinstance(state, DatabaseState)
        assert (state.name, state.schema, state.ids) == ("", None, ("aaa",))
        assert state.url == sqlite_url


def test_errors_print_nothing_to_stdout(
    make_app: AppFactory, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(sqlite_url)
    with app.app_context():
        with pytest.raises(DirectoryNotFoundError):
            upgrade()
    assert capsys.readouterr().out == ""


# -- on a server ---------------------------------------------------------------


@pytest.mark.server
@pytest.mark.parametrize("backend", ["postgresql"])
def test_upgrade_downgrade_results_on_postgresql(
    make_app: AppFactory, database_url: str
) -> None:
    app = make_app(database_url, columns=_name_only())
    with app.app_context():
        init()
        rev1 = _rev_id(migrate(message="initial"))
        result = upgrade()
        assert result.steps == [Step("upgrade", rev1, (), (rev1,), "initial")]
        assert result.initial == ()
        assert upgrade().steps == []
        assert _current_ids() == [rev1]

    app2 = make_app(database_url, columns=_with_email())
    with app2.app_context():
        rev2 = _rev_id(migrate(message="add email"))
        with pytest.raises(NotUpToDateError):
            migrate()
        result = upgrade()
        assert result.steps == [Step("upgrade", rev2, (rev1,), (rev2,), "add email")]
        assert version_rows(database_url) == [rev2]
        assert "email" in _column_names(database_url, "employee")

        result = downgrade()
        assert result.steps == [Step("downgrade", rev2, (rev2,), (rev1,), "add email")]
        assert version_rows(database_url) == [rev1]
        assert "email" not in _column_names(database_url, "employee")

        result = downgrade(revision="base")
        assert result.steps == [Step("downgrade", rev1, (rev1,), (), "initial")]
        assert _current_ids() == []
        assert "employee" not in table_names(database_url)


# -- several databases ---------------------------------------------------------


def test_steps_and_states_name_their_database(
    make_multidb_app: MultidbFactory, make_database: t.Callable[[str], str]
) -> None:
    app = make_multidb_app(
        {"": make_database("sqlite"), "users": make_database("sqlite")}
    )
    with app.app_context():
        init(multidb=True)
        rev = _rev_id(migrate(message="initial"))
        result = upgrade()
        assert sorted((s.database, s.revision) for s in result.steps) == [
            ("", rev),
            ("users", rev),
        ]
        states = current()
        assert sorted((state.name, state.ids) for state in states) == [
            ("", (rev,)),
            ("users", (rev,)),
        ]
        assert [s.database for s in downgrade(binds=["users"]).steps] == ["users"]
        assert check(binds=[""]) == CheckResult(databases=("",))


# -- the fast path ---------------------------------------------------------------


def test_python_callers_get_the_fast_path(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    """``api.heads()`` on a straight history does not import Alembic."""
    app = make_app(sqlite_url)
    with app.app_context():
        init()
        revision(message="first", rev_id="aaa")
        revision(message="second", rev_id="bbb")
        heads()  # writes the revision cache
    (tmp_path / "fast_app.py").write_text(
        "from flask import Flask\n"
        "from flask_sqlalchemy import SQLAlchemy\n"
        "from flask_migrate_ext import Migrate\n"
        "app = Flask(__name__)\n"
        f"app.config['SQLALCHEMY_DATABASE_URI'] = {sqlite_url!r}\n"
        "Migrate(app, SQLAlchemy(app))\n"
    )
    code = "\n".join(
        [
            "import sys",
            "from fast_app import app",
            "from flask_migrate_ext import api",
            "with app.app_context():",
            "    print([r.id for r in api.heads()], [r.id for r in api.history()],",
            "          api.branches())",
            "print('alembic' in sys.modules)",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["['bbb'] ['bbb', 'aaa'] []", "False"]
