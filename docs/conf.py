"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build/html``."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import flask_migrate_ext
from flask_migrate_ext.settings import markdown_table

project = "flask-migrate-ext"
copyright = "flask-migrate-ext developers"
release = flask_migrate_ext.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx_click",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_generated"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"

html_theme = "furo"
html_title = f"flask-migrate-ext {release}"

# Alembic logs its plugin set-up at INFO when autodoc imports it.
logging.getLogger("alembic").setLevel(logging.WARNING)


SETTINGS_MARKER = "<!-- settings-table -->"


def _settings_table(app: object, docname: str, source: list[str]) -> None:
    """Write the table of ``MIGRATE_*`` keys from the settings' own definitions."""
    if SETTINGS_MARKER in source[0]:
        source[0] = source[0].replace(SETTINGS_MARKER, markdown_table())


GRAPH_MARKER = "<!-- example-graph -->"
DOCS = Path(__file__).resolve().parent
EXAMPLE_APP = DOCS.parent / "example_app"
GENERATED = DOCS / "_generated"


def _example_graph(formats: t.Sequence[str]) -> dict[str, str]:
    """``flask db graph --no-current`` of the example app, in each format
    that can be made here (``svg`` needs Graphviz): format -> file name."""
    GENERATED.mkdir(exist_ok=True)
    made = {}
    for format in formats:
        if format == "svg" and shutil.which("dot") is None:
            continue
        name = f"example-graph.{format}"
        partial = GENERATED / f"{name}.{os.getpid()}"  # parallel builds
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "example", "db", "graph"]
            + ["--no-current", "--format", format, "-o", os.fspath(partial)],
            cwd=EXAMPLE_APP,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"flask db graph --format {format}: {done.stderr}")
        partial.replace(GENERATED / name)
        made[format] = name
    return made


def _graph_page(app: object, docname: str, source: list[str]) -> None:
    """Draw the example app's revision graph into the graph page."""
    if GRAPH_MARKER not in source[0]:
        return
    made = _example_graph(["mermaid", "svg"])
    mermaid = (GENERATED / made["mermaid"]).read_text(encoding="utf-8")
    parts = []
    if "svg" in made:
        parts.append(
            f"```{{image}} _generated/{made['svg']}\n"
            ":alt: The example app's four revisions, one after another.\n```"
        )
    else:
        parts.append("(Graphviz was not installed when this page was built.)")
    parts.append(f"The same graph as Mermaid:\n\n```text\n{mermaid}```")
    source[0] = source[0].replace(GRAPH_MARKER, "\n\n".join(parts))


def setup(app: t.Any) -> None:
    app.connect("source-read", _settings_table)
    app.connect("source-read", _graph_page)
