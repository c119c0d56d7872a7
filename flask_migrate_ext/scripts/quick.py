"""The revisions of a straight history, read without Alembic.

Importing Alembic costs a ``flask db`` process about 0.15 s (it loads the DDL
support of every dialect), as much again as a small app's own import. For
the common case the revision cache alone knows the answer: one line of
revisions with no branch labels and no dependencies, a cache that verifiably
describes every file, an ``alembic.ini`` without options that change how
scripts are found, and no ``configure`` callbacks (which could change them).
Then :func:`straight_history` returns the revisions, which the API's
``heads``, ``history`` and ``branches`` answer from; in every other case it
returns None and they ask Alembic.
"""

from __future__ import annotations

import configparser
import os
import typing as t
from pathlib import Path

from ..state import get_state
from ..state import resolve_directory
from ..state import revision_cache_enabled
from .revision_cache import CachedLoad
from .revisions import from_declared
from .revisions import Revision

_Declared = tuple[Path, dict[str, t.Any]]

#: ``alembic.ini`` options under which the cache's view of the folder, or
#: Alembic's output, could differ (with their default values).
_SCRIPT_OPTIONS = {
    "version_locations": None,
    "recursive_version_locations": "false",
    "sourceless": "false",
    "revision_environment": "false",
}
#: Characters Alembic refuses in revision ids (it reports an error instead).
_ILLEGAL_ID_CHARS = frozenset("@-+:")


def straight_history(directory: str | None) -> list[Revision] | None:
    """The revisions newest first, if the cache alone can tell (see above);
    None if Alembic must answer. The one place that decides."""
    state = get_state()
    if state.migrate.configure_callbacks or not revision_cache_enabled():
        return None
    location = resolve_directory(state, directory)
    if not _plain_ini(os.path.join(location, "alembic.ini")):
        return None
    versions = Path(location, "versions").absolute()  # as Alembic keys it
    found = CachedLoad(Path(location), [versions], recursive=False).declared()
    line = None if found is None else _in_line(found)
    return None if line is None else from_declared(line)


def _plain_ini(path: str) -> bool:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        if not parser.read(path, encoding="utf-8"):
            return False
    except (configparser.Error, UnicodeDecodeError):
        return False
    if not parser.has_section("alembic"):
        return False
    for option, default in _SCRIPT_OPTIONS.items():
        value = parser.get("alembic", option, fallback=default)
        if (value or "").strip().lower() != (default or ""):
            return False
    return True


def _in_line(found: list[_Declared]) -> list[_Declared] | None:
    """Order the revisions from head to base; None unless they form one line."""
    by_id: dict[str, _Declared] = {}
    child_of: dict[str | None, str] = {}
    for path, declared in found:
        revision = declared["revision"]
        down = _single_parent(declared["down_revision"])
        if (
            revision in by_id
            or down is False
            or declared["branch_labels"]
            or declared["depends_on"]
            or _ILLEGAL_ID_CHARS & set(revision)
            or down in child_of  # two children: a branch point
        ):
            return None
        by_id[revision] = (path, {**declared, "down_revision": down})
        child_of[down] = revision
    line = []
    current = child_of.get(None)
    while current is not None:
        line.append(by_id[current])
        current = child_of.get(current)
    if len(line) != len(by_id):
        return None  # a revision pointing nowhere, or a loop: Alembic says so
    return line[::-1]


def _single_parent(down: t.Any) -> str | None | t.Literal[False]:
    """A revision's one parent (None for a base), or False for anything else."""
    if isinstance(down, list):
        if len(down) > 1:
            return False
        down = down[0] if down else None
    if down == "":
        return False
    return t.cast("str | None", down)
