"""``heads``, ``history`` and ``branches`` answered from the revision cache
print exactly what Alembic prints, and step aside whenever they cannot be
sure; Python callers of the API get the same fast path."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import textwrap
import typing as t
from pathlib import Path

import pytest
from flask import Flask

from flask_migrate_ext.scripts import quick
from flask_migrate_ext.scripts.config import build_config
from flask_migrate_ext.state import get_state
from helpers import invoke

REVISION = """{doc}
revision = {revision!r}
down_revision = {down!r}
branch_labels = {labels!r}
depends_on = {depends!r}


def upgrade():
    pass


def downgrade():
    pass
"""

DOCS = [
    '"""first table\n\nRevision ID: r1\nRevises:\nCreate Date: 2025-01-01\n\n"""',
    '"""  padded, with ünïcode  """',
    "",  # no docstring at all
    '"""one line"""',
]


def write(
    versions: Path,
    revision: str,
    down: t.Any,
    doc: str = '"""a revision"""',
    labels: t.Any = None,
    depends: t.Any = None,
) -> None:
    (versions / f"{revision}_file.py").write_text(
        REVISION.format(
            doc=doc, revision=revision, down=down, labels=labels, depends=depends
        ),
        encoding="utf-8",
    )


def through_alembic(app: Flask, command: str, *args: t.Any) -> str:
    """What Alembic's own command prints, on the app's config."""
    from alembic import command as alembic_command

    out = io.StringIO()
    with app.app_context(), contextlib.redirect_stdout(out):
        getattr(alembic_command, command)(build_config(get_state()), *args)
    return out.getvalue()


def through_cli(app: Flask, *args: str) -> str:
    result = invoke(app, *args)
    assert result.exit_code == 0, result.output
    return t.cast(str, result.stdout)


def answered_quickly(app: Flask) -> bool:
    with app.app_context():
        return quick.straight_history(None) is not None


def straight(versions: Path, count: int = 4) -> None:
    down = None
    for n in range(count):
        write(versions, f"r{n}", down, DOCS[n % len(DOCS)])
        down = f"r{n}"


@pytest.mark.parametrize("count", [0, 1, 4])
def test_same_output_as_alembic(app: Flask, versions: Path, count: int) -> None:
    straight(versions, count)
    through_cli(app, "heads")  # writes the cache
    assert answered_quickly(app)
    cases = [
        (["heads"], "heads", (False, False)),
        (["heads", "-v"], "heads", (True, False)),
        (["history"], "history", (None, False, False)),
        (["history", "--verbose"], "history", (None, True, False)),
        (["branches"], "branches", (False,)),
    ]
    for cli_args, command, alembic_args in cases:
        assert through_cli(app, *cli_args) == through_alembic(
            app, command, *alembic_args
        )


def test_merge_tuple_of_one_parent(app: Flask, versions: Path) -> None:
    write(versions, "r1", None)
    write(versions, "r2", ("r1",))
    write(versions, "r3", ["r2"])
    through_cli(app, "heads")
    assert answered_quickly(app)
    assert through_cli(app, "history", "-v") == through_alembic(
        app, "history", None, True, False
    )


@pytest.mark.parametrize(
    "shape",
    ["branch point", "two bases", "merge", "branch label", "dependency", "dangling"],
)
def test_other_shapes_go_through_alembic(
    app: Flask, versions: Path, shape: str
) -> None:
    write(versions, "r1", None)
    if shape == "branch point":
        write(versions, "r2", "r1")
        write(versions, "r3", "r1")
    elif shape == "two bases":
        write(versions, "r2", None)
    elif shape == "merge":
        write(versions, "r2", "r1")
        write(versions, "r3", "r1")
        write(versions, "r4", ("r2", "r3"))
    elif shape == "branch label":
        write(versions, "r2", "r1", labels="feature")
    elif shape == "dependency":
        write(versions, "r2", None)
        write(versions, "r3", "r1", depends="r2")
    elif shape == "dangling":
        write(versions, "r2", "r1")
        through_cli(app, "heads")
        (versions / "r1_file.py").unlink()
        assert not answered_quickly(app)
        assert invoke(app, "heads").exit_code != 0
        return
    through_cli(app, "heads")
    assert not answered_quickly(app)
    for args, command, alembic_args in [
        (["heads"], "heads", (False, False)),
        (["heads", "-v"], "heads", (True, False)),
        (["heads", "--resolve-dependencies"], "heads", (False, True)),
        (["history"], "history", (None, False, False)),
        (["history", "-v"], "history", (None, True, False)),
        (["history", "-r", "r1:"], "history", ("r1:", False, False)),
        (["branches"], "branches", (False,)),
        (["branches", "-v"], "branches", (True,)),
        (["show", "r1"], "show", ("r1",)),
        (["show", "heads"], "show", ("heads",)),
    ]:
        assert through_cli(app, *args) == through_alembic(app, command, *alembic_args)


@pytest.mark.parametrize("shape", ["straight", "branch and merge"])
def test_database_views_match_alembic(app: Flask, versions: Path, shape: str) -> None:
    """``current`` and ``history -i`` read the database: same text as Alembic."""
    if shape == "straight":
        straight(versions)
    else:
        write(versions, "r1", None, DOCS[0])
        write(versions, "r2", "r1", DOCS[1])
        write(versions, "r3", "r1", DOCS[3])
        write(versions, "r4", ("r2", "r3"))
    assert invoke(app, "upgrade", "r2").exit_code == 0
    for args, command, alembic_args in [
        (["current"], "current", (False, False)),  # check_heads, verbose
        (["current", "-v"], "current", (False, True)),
        (["history", "-i"], "history", (None, False, True)),
        (["history", "-i", "-v"], "history", (None, True, True)),
        (["history", "-r", "current:"], "history", ("current:", False, False)),
        (["show", "current"], "show", ("current",)),
    ]:
        assert through_cli(app, *args) == through_alembic(app, command, *alembic_args)


def test_no_cache_yet(app: Flask, versions: Path) -> None:
    straight(versions)
    assert not answered_quickly(app)


def test_changed_file_is_not_answered_from_the_cache(
    app: Flask, versions: Path
) -> None:
    straight(versions)
    through_cli(app, "heads")
    write(versions, "r4", "r3")
    assert not answered_quickly(app)
    assert through_cli(app, "heads") == "r4 (head)\n"
    assert answered_quickly(app)


def test_configure_callbacks_go_through_alembic(app: Flask, versions: Path) -> None:
    straight(versions)
    through_cli(app, "heads")
    app.extensions["migrate"].migrate.configure(lambda config: config)
    assert not answered_quickly(app)


def test_cache_turned_off_goes_through_alembic(app: Flask, versions: Path) -> None:
    """A cache left from before ``MIGRATE_REVISION_CACHE = False`` is not used."""
    straight(versions)
    through_cli(app, "heads")
    app.config["MIGRATE_REVISION_CACHE"] = False
    assert not answered_quickly(app)
    assert through_cli(app, "heads") == "r3 (head)\n"


@pytest.mark.parametrize(
    "option",
    [
        "version_locations = %(here)s/elsewhere",
        "recursive_version_locations = true",
        "sourceless = true",
        "revision_environment = true",
    ],
)
def test_script_options_go_through_alembic(
    app: Flask, versions: Path, tmp_path: Path, option: str
) -> None:
    straight(versions)
    through_cli(app, "heads")
    ini = tmp_path / "migrations" / "alembic.ini"
    ini.write_text(ini.read_text().replace("[alembic]\n", f"[alembic]\n{option}\n"))
    assert not answered_quickly(app)


def test_commands_do_not_import_alembic(
    tmp_path: Path, versions: Path, app: Flask
) -> None:
    """The point of it all, in a real process."""
    straight(versions)
    through_cli(app, "heads")
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """
            from flask import Flask
            from flask_sqlalchemy import SQLAlchemy
            from flask_migrate_ext import Migrate

            app = Flask(__name__)
            app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
            db = SQLAlchemy(app)
            Migrate(app, db)
            """
        )
    )
    script = (
        "import sys\n"
        "from flask.cli import main\n"
        "sys.argv = ['flask', 'db', *sys.argv[1:]]\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print('alembic' in sys.modules, file=sys.stderr)\n"
    )
    env = {**os.environ, "FLASK_APP": "app.py"}
    for args in (["heads"], ["history"], ["branches"], ["heads", "-v"]):
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip().splitlines()[-1] == "False", args
    assert "r3 (head)" in done.stdout
