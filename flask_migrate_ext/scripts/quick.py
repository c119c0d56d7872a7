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
import time
import typing as t
from pathlib import Path

from ..state import get_state
from ..state import resolve_directory
from ..state import revision_cache_enabled
from .envfile import identify
from .envfile import read_env_py
from .revision_cache import CachedLoad
from .revision_cache import RACY_WINDOW_NS
from .revisions import from_declared
from .revisions import GraphUnclear
from .revisions import Revision
from .revisions import revisions_from_declared

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
    None if Alembic must answer."""
    load = _cached_load(directory)
    found = None if load is None else load.declared()
    line = None if found is None else _in_line(found)
    return None if line is None else from_declared(line)


def _cached_load(directory: str | None) -> CachedLoad | None:
    """The cache of the app's migration folder, if Alembic would read the
    folder as the cache does. The one place that decides."""
    state = get_state()
    if state.migrate.configure_callbacks or not revision_cache_enabled():
        return None
    location = resolve_directory(state, directory)
    if not _plain_ini(os.path.join(location, "alembic.ini")):
        return None
    versions = Path(location, "versions").absolute()  # as Alembic keys it
    return CachedLoad(Path(location), [versions], recursive=False)


class Graph(t.NamedTuple):
    """A history of any shape, read from the revision cache."""

    #: Every revision, base and heads alike, keyed by id in file order.
    revisions: dict[str, Revision]
    #: The heads, in Alembic's order.
    heads: tuple[str, ...]
    #: The template that wrote env.py (``flask``, ``flask-multidb``, ...);
    #: ``None`` when env.py has local edits.
    template: str | None
    #: ``flask_migrate_ext`` or ``Flask-Migrate``; ``None`` with local edits.
    tool: str | None


class _Memo(t.NamedTuple):
    key: tuple[t.Any, ...]
    built_ns: int
    graph: Graph | None


_memos: dict[str, _Memo] = {}


def history_graph(directory: str | None) -> Graph | None:
    """The whole revision graph from the cache, if the cache can vouch for
    every file (see above); None if only Alembic can tell.

    Kept in memory per folder: a later call only stats the folder's files
    (and ``alembic.ini``, ``env.py``, the cache file), and builds the graph
    again when any of them changed, or changed too recently to trust its
    stat (:data:`~.revision_cache.RACY_WINDOW_NS`).
    """
    state = get_state()
    if state.migrate.configure_callbacks or not revision_cache_enabled():
        return None
    location = resolve_directory(state, directory)
    versions = Path(location, "versions").absolute()
    load = CachedLoad(Path(location), [versions], recursive=False)
    files, latest = load.fingerprint()
    ini = _stat(os.path.join(location, "alembic.ini"))
    env = _stat(os.path.join(location, "env.py"))
    key = (ini, env, files)
    latest = max(latest, ini[1] if ini else 0, env[1] if env else 0)
    memo = _memos.get(os.fspath(versions))
    if memo is not None and memo.key == key and latest < memo.built_ns - RACY_WINDOW_NS:
        return memo.graph
    built_ns = time.time_ns()
    graph = _graph(load, location)
    _memos[os.fspath(versions)] = _Memo(key, built_ns, graph)
    return graph


def _graph(load: CachedLoad, location: str) -> Graph | None:
    if not _plain_ini(os.path.join(location, "alembic.ini")):
        return None
    found = load.declared()
    if found is None:
        return None
    try:
        revisions = revisions_from_declared(found)
    except GraphUnclear:
        return None
    heads = tuple(rev.id for rev in revisions.values() if rev.is_head)
    text = read_env_py(location)
    origin = identify(text) if text is not None else None
    return Graph(
        revisions,
        heads,
        origin.template if origin is not None else None,
        origin.tool if origin is not None else None,
    )


def _stat(path: str) -> tuple[int, int, int, int] | None:
    """Size, latest change (ns), inode, device; None when missing."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    changed = max(found.st_mtime_ns, found.st_ctime_ns)
    return (found.st_size, changed, found.st_ino, found.st_dev)


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
