"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build/html``."""

from __future__ import annotations

import logging
import typing as t

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
exclude_patterns = ["_build"]
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


def setup(app: t.Any) -> None:
    app.connect("source-read", _settings_table)
