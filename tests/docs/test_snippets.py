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
- ``<!-- snippet: skip -->``: not code to run (a signature).

In a ``console`` block, ``$ echo $?`` followed by a number checks the exit
code of the command before it; every other command must exit 0. The output a
page shows must include every line the command prints, except Alembic's
``INFO`` lines (the pages say they leave those out).
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_ext import Migrate
from helpers import invoke
from helpers import ok
from helpers import run_flask

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"

#: Where the pages say the project is; the real one is in ``tmp_path``.
DOC_PROJECT = "/tmp/tut"

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*snippet:\s*(.*?)\s*-->$")
_REVISION_ID = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{12}(?![0-9A-Za-z])")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?")


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
        while not lines[i].startswith("```"):
            i += 1
        marker = _MARKER.match(previous)
        found.append(
            Block(
                lang=fence.group(1),
                text="\n".join(lines[start + 1 : i]) + "\n",
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
    expected = [normalise(line) for line in shown]
    context = f"{where}: $ {command}\nprinted:\n" + "\n".join(printed)
    for doc_line, line in zip(shown, expected, strict=True):
        assert line in by_normal, f"{context}\nnot printed: {doc_line!r}"
        same_revisions(doc_line, by_normal[line], ids)
    for line in by_normal:
        if not line.startswith("INFO  ["):
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
        if args and args[0] == "flask":
            ok(run_flask(project, *args[1:]))
            ran += 1
    return ran


def walk(page: str, project: Path) -> int:
    """Follow ``docs/<page>`` in ``project``; return how many commands ran."""
    project.mkdir(exist_ok=True)
    ran = 0
    ids: dict[str, str] = {}
    for block in blocks(page):
        if block.lang == "python":
            apply_python(page, block, project, ids)
        elif block.lang == "console":
            ran += run_console(page, block, project, ids)
        elif block.lang == "bash":
            ran += run_bash(page, block, project)
    return ran


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
