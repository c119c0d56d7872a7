"""Draw a :class:`~flask_migrate_ext.api.HistoryGraph` as Mermaid or
Graphviz (dot) text, and dot text as SVG through Graphviz's ``dot`` program.

Older revisions are drawn above newer ones, an arrow from each revision to
the revisions that revise it; a ``depends_on`` is a dashed arrow. Heads have
a thick border, merge points a double one, and the revisions the databases
are at are filled, with the database named when there are several.

Importing this module does not import Alembic.
"""

from __future__ import annotations

import shutil
import subprocess
import typing as t

from ..errors import first_line
from ..errors import GraphvizNotFoundError
from ..errors import MigrateError

if t.TYPE_CHECKING:
    from ..api.drawing import HistoryGraph
    from ..api.results import DatabaseState
    from ..api.results import Revision

#: The formats ``flask db graph --format`` accepts.
FORMATS = ("mermaid", "dot", "svg")

#: Messages longer than this are cut, so boxes stay narrow.
MESSAGE_WIDTH = 48

_CURRENT_FILL = "#d9f2d9"
_CURRENT_STROKE = "#2e7d32"


def node_id(revision_id: str) -> str:
    """A node id for ``revision_id`` that Mermaid and dot both take unquoted.

    ASCII letters and digits are kept; any other character becomes
    ``_<hex code>_``, so two revisions never share a node id.
    """
    kept = (
        char if char.isascii() and char.isalnum() else f"_{ord(char):x}_"
        for char in revision_id
    )
    return "r_" + "".join(kept)


def render(graph: HistoryGraph, format: str) -> str:
    """``graph`` as the text of ``format`` (``mermaid`` or ``dot``), or as
    SVG (``svg``, through Graphviz)."""
    if format == "mermaid":
        return mermaid(graph)
    if format == "dot":
        return dot(graph)
    if format == "svg":
        return svg(dot(graph))
    raise ValueError(f"unknown graph format {format!r}")


def database_name(state: DatabaseState) -> str:
    """How a database is named on the graph: its bind name (``default`` for
    the default database), and its tenant schema."""
    name = state.name or "default"
    return f"{name} (schema {state.schema})" if state.schema else name


def label_lines(graph: HistoryGraph, revision: Revision) -> list[str]:
    """The lines of a revision's box: id and labels, message, what it is."""
    labels = graph.labels.get(revision.id, ())
    first = f"{revision.id} ({', '.join(labels)})" if labels else revision.id
    lines = [first]
    message = revision.message
    if len(message) > MESSAGE_WIDTH:
        message = message[: MESSAGE_WIDTH - 3].rstrip() + "..."
    if message:
        lines.append(message)
    kinds = [
        kind
        for kind, is_kind in [
            ("head", revision.is_head),
            ("branch point", revision.is_branch_point),
            ("merge point", revision.is_merge_point),
        ]
        if is_kind
    ]
    if kinds:
        lines.append(", ".join(kinds))
    states = graph.databases_at(revision.id)
    if states:
        # One database without a name (a single-database app): just "current".
        named = any(s.name or s.schema for s in graph.databases or ())
        names = ", ".join(database_name(state) for state in states)
        lines.append(f"current: {names}" if named else "current")
    return lines


# -- Mermaid --------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    """``text`` safe inside a quoted Mermaid label (entity codes)."""
    text = " ".join(text.split())
    return "".join(f"#{ord(char)};" if char in '"#&<>`' else char for char in text)


def mermaid(graph: HistoryGraph) -> str:
    """The graph as a Mermaid flowchart."""
    lines = ["flowchart TD"]
    for revision in reversed(graph.revisions):
        label = "<br>".join(
            _mermaid_text(line) for line in label_lines(graph, revision)
        )
        open_, close = ("[[", "]]") if revision.is_merge_point else ("[", "]")
        lines.append(f'    {node_id(revision.id)}{open_}"{label}"{close}')
    for down, up in graph.edges():
        lines.append(f"    {node_id(down)} --> {node_id(up)}")
    for needed, needing in graph.dependency_edges():
        lines.append(f"    {node_id(needed)} -. depends on .-> {node_id(needing)}")
    heads = [node_id(rev.id) for rev in graph.revisions if rev.is_head]
    current = [node_id(rev.id) for rev in graph.revisions if graph.databases_at(rev.id)]
    if heads:
        lines.append("    classDef head stroke-width:3px")
        lines.append(f"    class {','.join(heads)} head")
    if current:
        lines.append(
            f"    classDef current fill:{_CURRENT_FILL},stroke:{_CURRENT_STROKE}"
        )
        lines.append(f"    class {','.join(current)} current")
    return "\n".join(lines) + "\n"


# -- Graphviz -------------------------------------------------------------------


def _dot_text(text: str) -> str:
    """``text`` safe inside a quoted dot string."""
    text = " ".join(text.split())
    return text.replace("\\", "\\\\").replace('"', '\\"')


def dot(graph: HistoryGraph) -> str:
    """The graph as Graphviz dot text."""
    lines = [
        "digraph revisions {",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    for revision in reversed(graph.revisions):
        label = "\\n".join(_dot_text(line) for line in label_lines(graph, revision))
        attributes = [f'label="{label}"']
        if revision.is_merge_point:
            attributes.append("peripheries=2")
        if revision.is_head:
            attributes.append("penwidth=3")
        if graph.databases_at(revision.id):
            attributes.append(
                f'style="rounded,filled", fillcolor="{_CURRENT_FILL}",'
                f' color="{_CURRENT_STROKE}"'
            )
        lines.append(f"    {node_id(revision.id)} [{', '.join(attributes)}];")
    for down, up in graph.edges():
        lines.append(f"    {node_id(down)} -> {node_id(up)};")
    for needed, needing in graph.dependency_edges():
        lines.append(
            f"    {node_id(needed)} -> {node_id(needing)}"
            ' [style=dashed, label="depends on"];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def svg(dot_text: str) -> str:
    """``dot_text`` drawn as SVG by Graphviz's ``dot`` program.

    :raises GraphvizNotFoundError: ``dot`` is not on ``PATH``.
    """
    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(
            "--format svg needs Graphviz's 'dot' program, which is not on PATH:"
            " install Graphviz (Debian/Ubuntu: apt-get install graphviz), or use"
            " --format dot or --format mermaid."
        )
    done = subprocess.run(
        [program, "-Tsvg"],
        input=dot_text,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    if done.returncode != 0:
        reason = first_line(done.stderr) or f"exit status {done.returncode}"
        raise MigrateError(f"Graphviz's dot could not draw the graph: {reason}")
    return done.stdout
