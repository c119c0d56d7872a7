"""The docs' snippets run: the pages are followed as a newcomer would.

The tutorial and the quick start are walked in order in a temporary project:
their ``python`` blocks build the app, their ``console`` and ``bash`` blocks'
``flask`` commands run in a subprocess, and the output a page shows must be
what the command prints (revision ids and dates aside).

An HTML comment right before a ``python`` block says what to do with it,
invisible in the rendered page:

- ``<!-- snippet: write PATH -->``: the block is the file ``PATH``.
- ``<!-- snippet: edit GLOB -->``: the block's top-level functions and classes
  replace those of the same name in the one file matching ``GLOB``.
- ``<!-- snippet: compare GLOB -->``: the block is what the one file matching
  ``GLOB`` holds (a generated script).
- ``<!-- snippet: excerpt GLOB -->``: the block's lines appear, in that
  order, in the one file matching ``GLOB`` (other lines may come between;
  lines starting with ``...`` stand for what the page leaves out, and the
  page's comment lines are its own).
- ``<!-- snippet: skip -->``: not code to run (a signature). A reason may
  follow (``<!-- snippet: skip (needs PostgreSQL) -->``); before a ``console``
  or ``bash`` block, it keeps the block's commands from running.

Unmarked ``python`` blocks of some pages (configuration, deploying, FAQ) are
run by :func:`next_to_app`, next to an app with a model and a migration.

In a ``console`` block, ``$ echo $?`` followed by a number checks the exit
code of the command before it; every other command must exit 0. The output a
page shows must include every line the command prints, except Alembic's
``INFO`` lines (the pages say they leave those out); a ``...`` line says the
page leaves out some lines. In a ``bash`` block, ``NAME=value`` before
``flask`` sets an environment variable.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import Migrate
from helpers import invoke
from helpers import ok
from helpers import run_flask
from helpers import table_names
from helpers import version_rows

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"

#: Where the pages say the project is; the real one is in ``tmp_path``.
DOC_PROJECT = "/tmp/tut"

_FENCE = re.compile(r"^\s*```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*snippet:\s*(.*?)\s*-->$")
_REVISION_ID = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{12}(?![0-9A-Za-z])")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2}(\.\d+)?)?")
#: What ``status`` says of how long a revision took, and on which host.
_TIMING = re.compile(r"\b\d+\.\d{2} s, on [^\]]+\]")
#: How long a revision took, in upgrade's and downgrade's progress lines.
_DURATION = re.compile(r"\((?:\d+\.\d{1,2} s|\d+ min \d{2} s)\)$")


@dataclasses.dataclass
class Block:
    """A fenced block of a page."""

    lang: str
    text: str
    marker: str | None
    line: int

    def where(self, page: str) -> str:
        return f"docs/{page} line {self.line}"


def blocks(page: str) -> list[Block]:
    """The fenced blocks of ``docs/<page>``, each with its snippet marker."""
    found: list[Block] = []
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    previous = ""
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        start = i
        i += 1
        while not lines[i].lstrip().startswith("```"):
            i += 1
        marker = _MARKER.match(previous)
        found.append(
            Block(
                lang=fence.group(1),
                text=textwrap.dedent("\n".join(lines[start + 1 : i]) + "\n"),
                marker=marker.group(1) if marker else None,
                line=start + 1,
            )
        )
        previous = ""
        i += 1
    return found


def raw_lines(text: str, project: Path | None = None) -> list[str]:
    """Non-blank lines, right-stripped, with the project's path as on the pages."""
    if project is not None:
        text = text.replace(os.fspath(project), DOC_PROJECT)
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def normalise(line: str) -> str:
    """A line with revision ids and dates made comparable."""
    line = _TIMING.sub("<seconds>, on <host>]", line)
    line = _DURATION.sub("(<seconds>)", line)
    return _DATE.sub("<date>", _REVISION_ID.sub("<rev>", line))


def same_revisions(doc: str, real: str, ids: dict[str, str]) -> None:
    """A revision id of the page stands for the same real one all along."""
    for shown, printed in zip(
        _REVISION_ID.findall(doc), _REVISION_ID.findall(real), strict=True
    ):
        assert ids.setdefault(shown, printed) == printed, (doc, real, ids)
    assert len(set(ids.values())) == len(ids), ids


def one_file(project: Path, pattern: str) -> Path:
    matches = list(project.glob(pattern))
    assert len(matches) == 1, f"{pattern}: {matches}"
    return matches[0]


def replace_definitions(source: str, snippet: str) -> str:
    """Replace ``source``'s top-level functions and classes by the snippet's."""
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    snippet_lines = snippet.splitlines()
    new = {
        node.name: snippet_lines[node.lineno - 1 : node.end_lineno]
        for node in ast.parse(snippet).body
        if isinstance(node, definitions)
    }
    lines = source.splitlines()
    for node in reversed(ast.parse(source).body):
        if isinstance(node, definitions) and node.name in new:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines[first - 1 : node.end_lineno] = new.pop(node.name)
    assert not new, f"not in the file: {sorted(new)}"
    return "\n".join(lines) + "\n"


def apply_python(page: str, block: Block, project: Path, ids: dict[str, str]) -> None:
    assert block.marker, f"{block.where(page)}: add a <!-- snippet: ... --> marker"
    action, _, target = block.marker.partition(" ")
    if action == "skip":
        return
    if action == "write":
        path = project / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.text, encoding="utf-8")
    elif action == "edit":
        path = one_file(project, target)
        source = path.read_text(encoding="utf-8")
        path.write_text(replace_definitions(source, block.text), encoding="utf-8")
    elif action == "excerpt":
        real = iter(map(normalise, raw_lines(one_file(project, target).read_text())))
        for line in raw_lines(block.text):
            if not line.lstrip().startswith(("...", "#")):
                assert normalise(line) in real, f"{block.where(page)}: {line!r}"
    elif action == "compare":
        real = raw_lines(one_file(project, target).read_text(encoding="utf-8"))
        shown = raw_lines(block.text)
        assert list(map(normalise, real)) == list(map(normalise, shown)), block.where(
            page
        )
        for doc_line, real_line in zip(shown, real, strict=True):
            same_revisions(doc_line, real_line, ids)
    else:
        raise AssertionError(f"{block.where(page)}: unknown snippet {block.marker!r}")


def check_output(
    where: str,
    command: str,
    done: subprocess.CompletedProcess[str],
    shown: list[str],
    project: Path,
    ids: dict[str, str],
) -> None:
    """The lines shown are printed, and every line printed but Alembic's
    ``INFO`` lines is shown."""
    printed = raw_lines(done.stdout, project) + raw_lines(done.stderr, project)
    by_normal = {normalise(line): line for line in printed}
    elided = "..." in shown
    shown = [line for line in shown if line != "..."]
    expected = [normalise(line) for line in shown]
    context = f"{where}: $ {command}\nprinted:\n" + "\n".join(printed)
    for doc_line, line in zip(shown, expected, strict=True):
        assert line in by_normal, f"{context}\nnot printed: {doc_line!r}"
        same_revisions(doc_line, by_normal[line], ids)
    for line in by_normal:
        if not line.startswith("INFO  [") and not elided:
            assert line in expected, f"{context}\nnot shown: {line!r}"


def run_console(page: str, block: Block, project: Path, ids: dict[str, str]) -> int:
    """Run the block's commands in order; return how many ran."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.strip():
            assert steps, f"{block.where(page)}: output before a command"
            steps[-1][1].append(line.rstrip())
    done: subprocess.CompletedProcess[str] | None = None
    checked = True
    for command, shown in steps:
        if command == "echo $?":
            assert done is not None, block.where(page)
            assert [str(done.returncode)] == shown, (
                f"{block.where(page)}: {done.args}\n{done.stdout}{done.stderr}"
            )
            checked = True
            continue
        if not checked:
            ok(done)
        args = shlex.split(command)
        assert args[0] == "flask", f"{block.where(page)}: cannot run {command!r}"
        done = run_flask(project, *args[1:])
        assert "Traceback" not in done.stdout + done.stderr, done.stderr
        check_output(block.where(page), command, done, shown, project, ids)
        checked = False
    if not checked:
        ok(done)
    return len(steps)


def run_bash(page: str, block: Block, project: Path) -> int:
    """Run the block's ``flask`` lines (comments dropped), each exiting 0; other
    lines (``pip install``) are left to the reader."""
    ran = 0
    for line in block.text.splitlines():
        args = shlex.split(line, comments=True)
        env = {}
        while args and re.fullmatch(r"[A-Z_]+=.*", args[0]):
            name, _, value = args.pop(0).partition("=")
            env[name] = value
        if args and args[0] == "flask":
            ok(run_flask(project, *args[1:], env=env))
            ran += 1
    return ran


def walk(page: str, project: Path) -> int:
    """Follow ``docs/<page>`` in ``project``; return how many commands ran."""
    project.mkdir(exist_ok=True)
    ran = 0
    ids: dict[str, str] = {}
    for block in blocks(page):
        ran += run_block(page, block, project, ids)
    return ran


def run_block(page: str, block: Block, project: Path, ids: dict[str, str]) -> int:
    """Do what one block says; return how many commands ran."""
    if block.lang == "python":
        apply_python(page, block, project, ids)
    elif (block.marker or "").startswith("skip"):
        pass
    elif block.lang == "console":
        return run_console(page, block, project, ids)
    elif block.lang == "bash":
        return run_bash(page, block, project)
    return 0


def block_with(page: str, text: str) -> Block:
    """The one block of ``docs/<page>`` that contains ``text``."""
    (found,) = [b for b in blocks(page) if text in b.text]
    return found


def test_tutorial(tmp_path: Path) -> None:
    project = tmp_path / "tut"
    assert walk("tutorial.md", project) >= 10


def test_quickstart(tmp_path: Path) -> None:
    project = tmp_path / "tut"
    assert walk("quickstart.md", project) == 3
    assert (project / "instance" / "app.db").exists()


def test_app_factories(tmp_path: Path) -> None:
    """The factory builds an app whose naming convention names constraints in
    the generated revision, and the page's command upgrades it."""
    (python,) = [b for b in blocks("app-factories.md") if b.lang == "python"]
    (command,) = [b for b in blocks("app-factories.md") if b.lang == "bash"]
    apply_python("app-factories.md", python, tmp_path, {})
    (tmp_path / "example" / "models.py").write_text(
        "from . import db\n\n\n"
        "class Department(db.Model):\n"
        "    id = db.Column(db.Integer, primary_key=True)\n"
        "    name = db.Column(db.String(50), unique=True)\n\n\n"
        "class Employee(db.Model):\n"
        "    id = db.Column(db.Integer, primary_key=True)\n"
        "    department_id = db.Column(db.ForeignKey('department.id'))\n"
    )
    for args in (["init"], ["migrate", "-m", "initial"]):
        ok(run_flask(tmp_path, "--app", "example", "db", *args))
    script = one_file(tmp_path, "migrations/versions/*_initial.py").read_text()
    for name in ("pk_department", "uq_department_name", "fk_employee_department_id"):
        assert name in script
    assert run_bash("app-factories.md", command, tmp_path) == 1
    assert (tmp_path / "instance" / "example.db").exists()


@pytest.mark.usefixtures("restore_logging")
def test_configuration(tmp_path: Path) -> None:
    """Each block runs next to an app with ``db`` and ``migrate``, and the
    commands still work."""
    ran = 0
    for block in blocks("configuration.md"):
        if block.lang != "python" or block.marker == "skip":
            continue
        assert block.marker is None, block.where("configuration.md")
        app = Flask("snippet", root_path=os.fspath(tmp_path))
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'app.db'}"
        db = SQLAlchemy(app)
        migrate = Migrate(app, db, directory=os.fspath(tmp_path / f"m{ran}"))
        namespace = {"app": app, "db": db, "migrate": migrate}
        exec(compile(block.text, block.where("configuration.md"), "exec"), namespace)
        for args in (["init"], ["migrate", "-m", "empty"], ["upgrade"]):
            ok(invoke(app, *args))
        with app.app_context():
            config = migrate.get_config()
            if "configure_alembic" in namespace:
                assert config.get_main_option("revision_environment") == "true"
            db.engine.dispose()
        ran += 1
    assert ran == 1


ROOT = DOCS.parent

_APP = """\
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///app.db"
"""

#: An app such as the pages describe: departments and employees.
_STAFF_APP = f"""{_APP}db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Department(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False)


class Employee(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(100), nullable=False)
"""


def edit_file(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def flask_ok(project: Path, *args: str) -> None:
    ok(run_flask(project, *args))


def test_index(tmp_path: Path) -> None:
    """The two commands of the front page work on the quick start's app."""
    project = tmp_path / "tut"
    project.mkdir()
    apply_python(
        "quickstart.md", block_with("quickstart.md", "class Book"), project, {}
    )
    flask_ok(project, "db", "init")
    assert walk("index.md", project) == 2
    assert (project / "instance" / "app.db").exists()


def test_status(tmp_path: Path) -> None:
    """The quick start's app, then the status page's commands and output."""
    project = tmp_path / "tut"
    assert walk("quickstart.md", project) == 3
    assert walk("status.md", project) >= 6


def test_autogenerate(tmp_path: Path) -> None:
    """``migrate -v`` after adding a column; a rename seen by ``check`` and
    ``migrate``; the example app's files the page quotes."""
    page = "autogenerate.md"
    ids: dict[str, str] = {}
    verbose, renamed = tmp_path / "verbose", tmp_path / "renamed"
    for project, app in [(verbose, "app"), (renamed, "example")]:
        project.mkdir()
        (project / f"{app}.py").write_text(_STAFF_APP)
        for args in (["init"], ["migrate", "-m", "initial"], ["upgrade"]):
            flask_ok(project, "--app", app, "db", *args)
    name = "    name = db.Column(db.String(100), nullable=False)\n"
    edit_file(verbose / "app.py", name, name + "    email = db.Column(db.String(80))\n")
    assert run_block(page, block_with(page, "db migrate -v"), verbose, ids) == 1
    edit_file(renamed / "example.py", name, name.replace(" name", " full_name"))
    assert run_block(page, block_with(page, "db check"), renamed, ids) == 2
    message = "Rename employee name to full_name"
    flask_ok(renamed, "--app", "example", "db", "migrate", "-m", message)
    python = [b for b in blocks(page) if b.lang == "python"]
    assert len(python) == 7
    for block in python:
        # The example app's files are the repository's own.
        where = ROOT if "example_app/" in (block.marker or "") else renamed
        apply_python(page, block, where, ids)


def test_existing_database(tmp_path: Path) -> None:
    """A database made by ``create_all()`` adopts migrations with ``stamp``."""
    page = "existing-database.md"
    (tmp_path / "app.py").write_text(
        _APP + "app.config.from_prefixed_env()\ndb = SQLAlchemy(app)\n"
        "migrate = Migrate(app, db)\n\n\n"
        "class Book(db.Model):\n"
        "    id = db.Column(db.Integer, primary_key=True)\n"
        "    title = db.Column(db.String(200), nullable=False)\n"
    )
    create_all = "from app import app, db\nwith app.app_context():\n    db.create_all()"
    ok(subprocess.run([sys.executable, "-c", create_all], cwd=tmp_path, check=False))
    init, stamp = [b for b in blocks(page) if b.lang == "bash"]
    assert run_bash(page, init, tmp_path) == 2
    script = one_file(tmp_path, "migrations/versions/*_initial_schema.py")
    assert "op.create_table('book'" in script.read_text()
    assert run_bash(page, stamp, tmp_path) == 1
    flask_ok(tmp_path, "db", "check")
    assert version_rows(f"sqlite:///{tmp_path / 'instance' / 'app.db'}") == [
        script.name.partition("_")[0]
    ]


def test_multiple_databases(tmp_path: Path) -> None:
    """The page's app, on two SQLite files instead of its servers."""
    page = "multiple-databases.md"
    (python,) = [b for b in blocks(page) if b.lang == "python"]
    files = iter(["main.db", "users.db"])
    app = re.sub(
        r'"(postgresql|mysql)\S*"',
        lambda _: f'"sqlite:///{tmp_path / next(files)}"',
        python.text,
    )
    (tmp_path / "app.py").write_text(_APP + app)
    setup, bind = [b for b in blocks(page) if b.lang == "bash"]
    assert run_bash(page, setup, tmp_path) == 3
    assert table_names(f"sqlite:///{tmp_path / 'main.db'}") == {
        "alembic_version",
        "group",
    }
    assert table_names(f"sqlite:///{tmp_path / 'users.db'}") == {
        "alembic_version",
        "user",
    }
    assert run_bash(page, bind, tmp_path) == 2
    # Without the "users" bind, the revision's upgrade_users() is refused.
    edit_file(tmp_path / "app.py", 'app.config["SQLALCHEMY_BINDS"]', "BINDS")
    done = run_flask(tmp_path, "db", "upgrade")
    (shown,) = raw_lines(block_with(page, "Database not configured").text)
    assert done.returncode == 1, done.stderr
    assert [normalise(shown)] == list(map(normalise, raw_lines(done.stderr)))


def test_switching(tmp_path: Path) -> None:
    """A folder made by Flask-Migrate: ``migrate`` says its env.py is old."""
    page = "switching.md"
    (tmp_path / "app.py").write_text(
        _STAFF_APP.replace("flask_migrate_ext", "flask_migrate")
    )
    flask_ok(tmp_path, "db", "init")
    edit_file(tmp_path / "app.py", "flask_migrate", "flask_migrate_ext")
    assert walk(page, tmp_path) == 1


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("page", ["deploying.md", "faq.md"])
def test_next_to_app(page: str, tmp_path: Path) -> None:
    found = [b for b in blocks(page) if b.lang == "python"]
    assert found
    for number, block in enumerate(found):
        assert block.marker is None, block.where(page)
        next_to_app(page, block, tmp_path / str(number))


def next_to_app(page: str, block: Block, project: Path) -> None:
    """Run the block next to an app (``app``, ``db``, ``migrate``) with a
    model and its revision; the app upgrades and passes ``check`` after."""
    project.mkdir(parents=True, exist_ok=True)
    app = Flask("snippet", root_path=os.fspath(project))
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{project / 'app.db'}"
    db = SQLAlchemy(app)
    migrate = Migrate(app, db, directory=os.fspath(project / "migrations"))
    type("Item", (db.Model,), {"id": db.Column(db.Integer, primary_key=True)})
    for args in (["init"], ["migrate", "-m", "item"]):
        ok(invoke(app, *args))
    namespace = {"app": app, "db": db, "migrate": migrate}
    exec(compile(block.text, block.where(page), "exec"), namespace)
    for args in (["upgrade"], ["check"]):
        ok(invoke(app, *args))
    with app.app_context():
        db.engine.dispose()
