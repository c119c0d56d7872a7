"""``flask db graph``: a branched history drawn as Mermaid (parsed back here),
dot (run through Graphviz) and SVG, with each database's revision marked."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from flask import Flask

from flask_migrate_ext import ExitCode
from helpers import AppFactory
from helpers import invoke
from helpers import MultidbFactory
from helpers import ok
from helpers import require_program
from helpers import run_flask
from helpers import write_revision

#: The history every test draws: a1 branches into b2 and c3 (labelled
#: "feature"); d4 follows c3 and depends on b2; m_5 merges b2 and d4; e6
#: follows it and depends on the "feature" label (so on c3).
EDGES = {("a1", "b2"), ("a1", "c3"), ("c3", "d4"), ("b2", "m_5"), ("d4", "m_5")}
EDGES |= {("m_5", "e6")}
DEPENDENCIES = {("b2", "d4"), ("c3", "e6")}
MERGE_MESSAGE = 'Merge "feature" <into> main #1 & more'


def write_branched_history(versions: Path) -> None:
    def write(rev: str, down: t.Any, **kwargs: t.Any) -> None:
        write_revision(versions, rev, down, "pass", "pass", **kwargs)

    write("a1", None, message="Create tables")
    write("b2", "a1")
    write("c3", "a1", branch_labels=("feature",))
    write("d4", "c3", depends_on="b2")
    write("m_5", ("b2", "d4"), message=MERGE_MESSAGE)
    write("e6", "m_5", depends_on="feature")


@pytest.fixture
def make_branched(make_app: AppFactory, tmp_path: Path) -> t.Callable[[str], Flask]:
    def factory(url: str) -> Flask:
        app = make_app(url)
        ok(invoke(app, "init"))
        write_branched_history(tmp_path / "migrations" / "versions")
        return app

    return factory


# -- reading Mermaid back -------------------------------------------------------


@dataclasses.dataclass
class Parsed:
    """A Mermaid flowchart, read back: nodes by revision id."""

    shapes: dict[str, str] = dataclasses.field(default_factory=dict)
    labels: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    edges: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    dependencies: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    classes: dict[str, set[str]] = dataclasses.field(default_factory=dict)


_NODE = re.compile(r'(r_\w+)(\[\[|\[)"([^"]*)"(\]\]|\])')
_EDGE = re.compile(r"(r_\w+) --> (r_\w+)")
_DEPENDENCY = re.compile(r"(r_\w+) -\. depends on \.-> (r_\w+)")
_CLASS = re.compile(r"class ([\w,]+) (\w+)")
_CLASS_DEF = re.compile(r"classDef \w+ [\w:#,-]+")


def revision_id(node: str) -> str:
    """Undo the node id encoding: ``r_`` + the id, ``_<hex>_`` per other character."""
    assert node.startswith("r_"), node
    return re.sub(r"_([0-9a-f]+)_", lambda m: chr(int(m.group(1), 16)), node[2:])


def parse_mermaid(text: str) -> Parsed:
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    parsed = Parsed()
    for line in lines[1:]:
        assert line.startswith("    "), line
        line = line.strip()
        if match := _NODE.fullmatch(line):
            node, opening, label, closing = match.groups()
            assert len(opening) == len(closing), line
            assert node not in parsed.shapes, f"{node} defined twice"
            parsed.shapes[revision_id(node)] = "double" if opening == "[[" else "box"
            decoded = re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), label)
            parsed.labels[revision_id(node)] = decoded.split("<br>")
        elif match := _EDGE.fullmatch(line):
            parsed.edges.add((revision_id(match[1]), revision_id(match[2])))
        elif match := _DEPENDENCY.fullmatch(line):
            parsed.dependencies.add((revision_id(match[1]), revision_id(match[2])))
        elif match := _CLASS.fullmatch(line):
            nodes = {revision_id(node) for node in match[1].split(",")}
            parsed.classes.setdefault(match[2], set()).update(nodes)
        else:
            assert _CLASS_DEF.fullmatch(line), f"not Mermaid we write: {line!r}"
    every_end = {end for edge in parsed.edges | parsed.dependencies for end in edge}
    assert every_end <= set(parsed.shapes), "an edge to an undefined node"
    return parsed


# -- the tests -------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.server)]
)
def test_mermaid_shows_branches_merges_labels_and_current(
    make_branched: t.Callable[[str], Flask],
    make_database: t.Callable[[str], str],
    backend: str,
) -> None:
    app = make_branched(make_database(backend))
    ok(invoke(app, "upgrade", "b2"))

    result = ok(invoke(app, "graph"))
    graph = parse_mermaid(result.stdout)

    assert set(graph.shapes) == {"a1", "b2", "c3", "d4", "m_5", "e6"}
    assert graph.edges == EDGES
    assert graph.dependencies == DEPENDENCIES
    assert {rev for rev, shape in graph.shapes.items() if shape == "double"} == {"m_5"}
    assert graph.classes == {"head": {"e6"}, "current": {"b2"}}
    assert graph.labels["a1"] == ["a1", "Create tables", "branch point"]
    assert graph.labels["b2"] == ["b2", "b2", "current"]
    assert graph.labels["c3"] == ["c3 (feature)", "c3"]  # declared here only
    assert graph.labels["d4"] == ["d4", "d4"]
    assert graph.labels["m_5"] == ["m_5", MERGE_MESSAGE, "merge point"]
    assert graph.labels["e6"] == ["e6", "e6", "head"]

    ok(invoke(app, "upgrade"))
    graph = parse_mermaid(ok(invoke(app, "graph")).stdout)
    assert graph.classes == {"head": {"e6"}, "current": {"e6"}}
    assert graph.labels["e6"] == ["e6", "e6", "head", "current"]


def test_each_database_is_named_where_it_is(
    make_multidb_app: MultidbFactory, make_database: t.Callable[[str], str]
) -> None:
    app = make_multidb_app(
        {"": make_database("sqlite"), "users": make_database("sqlite")}
    )
    ok(invoke(app, "init", "--multidb"))
    ok(invoke(app, "revision", "-m", "one", "--rev-id", "r1"))
    ok(invoke(app, "revision", "-m", "two", "--rev-id", "r2"))
    ok(invoke(app, "upgrade", "r1"))
    ok(invoke(app, "upgrade", "--bind", "users"))

    graph = parse_mermaid(ok(invoke(app, "graph")).stdout)
    assert graph.labels["r1"] == ["r1", "one", "current: default"]
    assert graph.labels["r2"] == ["r2", "two", "head", "current: users"]
    assert graph.classes["current"] == {"r1", "r2"}

    graph = parse_mermaid(ok(invoke(app, "graph", "--bind", "users")).stdout)
    assert graph.labels["r1"] == ["r1", "one"]
    assert graph.labels["r2"][-1] == "current: users"


def test_dot_is_accepted_by_graphviz(
    make_branched: t.Callable[[str], Flask], sqlite_url: str
) -> None:
    dot = require_program("dot")
    app = make_branched(sqlite_url)
    ok(invoke(app, "upgrade", "d4"))
    text = ok(invoke(app, "graph", "--format", "dot")).stdout
    assert text.startswith("digraph revisions {")
    assert text.count("style=dashed") == 2

    done = ok(
        subprocess.run([dot, "-Tsvg"], input=text, capture_output=True, text=True)
    )
    for node in ("r_a1", "r_b2", "r_c3", "r_d4", "r_m_5f_5", "r_e6"):
        assert f"<title>{node}</title>" in done.stdout
    assert "&lt;into&gt;" in done.stdout  # the merge message, escaped twice over
    # d4 and b2 (which d4 depends on, so it was applied too) are filled.
    assert done.stdout.count('fill="#d9f2d9"') == 2


def test_svg_written_to_a_file(
    make_branched: t.Callable[[str], Flask], sqlite_url: str, tmp_path: Path
) -> None:
    require_program("dot")
    app = make_branched(sqlite_url)
    out = tmp_path / "history.svg"
    result = ok(invoke(app, "graph", "--format", "svg", "-o", str(out)))
    assert result.stdout == ""
    assert f"Wrote the graph to {out}." in result.stderr
    svg = out.read_text(encoding="utf-8")
    assert svg.startswith("<?xml") and svg.rstrip().endswith("</svg>")
    assert "<title>r_e6</title>" in svg

    # To standard output, the SVG text itself.
    result = ok(invoke(app, "graph", "--format", "svg", "--no-current"))
    assert result.stdout.startswith("<?xml") and "<title>r_a1</title>" in result.stdout


APP = """\
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///app.db"
Migrate(app, SQLAlchemy(app))
"""


def test_svg_without_graphviz_says_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    ok(run_flask(tmp_path, "--app", "app", "db", "init"))
    write_branched_history(tmp_path / "migrations" / "versions")
    empty = tmp_path / "no-programs"
    empty.mkdir()
    out = tmp_path / "history.svg"

    done = run_flask(
        tmp_path,
        *("--app", "app", "db", "graph", "--format", "svg", "-o", str(out)),
        env={"PATH": str(empty)},
    )
    assert done.returncode == ExitCode.ERROR, done.stderr
    assert done.stderr.splitlines()[-1] == (
        "Error: --format svg needs Graphviz's 'dot' program, which is not on PATH:"
        " install Graphviz (Debian/Ubuntu: apt-get install graphviz), or use"
        " --format dot or --format mermaid."
    )
    assert not out.exists()

    # The text formats need nothing installed.
    done = ok(
        run_flask(
            tmp_path,
            *("--app", "app", "db", "graph", "--format", "dot"),
            env={"PATH": str(empty)},
        )
    )
    assert "r_m_5f_5 -> r_e6;" in done.stdout


def test_unreachable_database_and_no_current(
    make_branched: t.Callable[[str], Flask],
) -> None:
    app = make_branched("postgresql+psycopg://fmx:s3cret@127.0.0.1:1/nowhere")

    result = invoke(app, "graph")
    assert result.exit_code == ExitCode.DATABASE_UNREACHABLE, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: Cannot connect to postgresql+psycopg://fmx:***@")
    assert line.endswith(
        ". To draw the graph without reading the databases, add --no-current."
    )
    assert "s3cret" not in result.output

    graph = parse_mermaid(ok(invoke(app, "graph", "--no-current")).stdout)
    assert graph.edges == EDGES
    assert "current" not in graph.classes


def test_bad_format_is_refused(
    make_branched: t.Callable[[str], Flask], sqlite_url: str
) -> None:
    result = invoke(make_branched(sqlite_url), "graph", "--format", "png")
    assert result.exit_code == ExitCode.USAGE
    assert "Invalid value for '--format': 'png' is not one of" in result.stderr
    assert result.stdout == ""


def test_unwritable_output_file(
    make_branched: t.Callable[[str], Flask], sqlite_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "missing-folder" / "graph.mmd"
    result = invoke(make_branched(sqlite_url), "graph", "-o", str(out))
    assert result.exit_code == ExitCode.ERROR
    assert result.stderr.splitlines()[-1] == (
        f"Error: Cannot write the graph to {out}: No such file or directory"
    )


def test_empty_history(make_app: AppFactory, sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    for format, empty in [("mermaid", "flowchart TD\n"), ("dot", "digraph revisions")]:
        result = ok(invoke(app, "graph", "--format", format))
        assert result.stdout.startswith(empty)
        assert "No revisions yet: the graph is empty." in result.stderr


def test_empty_dot_is_accepted_by_graphviz(
    make_app: AppFactory, sqlite_url: str
) -> None:
    dot = require_program("dot")
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    text = ok(invoke(app, "graph", "--format", "dot", "--no-current")).stdout
    ok(subprocess.run([dot, "-Tsvg"], input=text, capture_output=True, text=True))


def test_straight_history(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    versions = tmp_path / "migrations" / "versions"
    write_revision(versions, "s1", None, "pass", "pass")
    write_revision(versions, "s2", "s1", "pass", "pass")
    ok(invoke(app, "upgrade", "s1"))
    graph = parse_mermaid(ok(invoke(app, "graph")).stdout)
    assert graph.edges == {("s1", "s2")}
    assert graph.classes == {"head": {"s2"}, "current": {"s1"}}


def test_straight_history_is_drawn_without_importing_alembic(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    ok(run_flask(tmp_path, "--app", "app", "db", "init"))
    versions = tmp_path / "migrations" / "versions"
    write_revision(versions, "s1", None, "pass", "pass")
    write_revision(versions, "s2", "s1", "pass", "pass")
    ok(run_flask(tmp_path, "--app", "app", "db", "heads"))  # fills the cache
    script = (
        "import sys\n"
        "from flask.cli import main\n"
        "sys.argv = ['flask', '--app', 'app', 'db', 'graph', '--no-current']\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print('alembic' in sys.modules, file=sys.stderr)\n"
    )
    done = ok(
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    )
    assert done.stderr.splitlines()[-1] == "False"
    assert parse_mermaid(done.stdout).edges == {("s1", "s2")}
