"""``heads``, ``history`` and ``branches`` for a straight history, without Alembic.

Importing Alembic costs a ``flask db`` process about 0.15 s (it loads the DDL
support of every dialect), as much again as a small app's own import. For
the common case the revision cache alone knows the answer: one line of
revisions with no branch labels and no dependencies, a cache that verifiably
describes every file, an ``alembic.ini`` without options that change how
scripts are found, and no ``configure`` callbacks (which could change them).
Then the answer is printed here, in Alembic's exact format; in every other
case these functions return None and the command runs through the API.
"""

from __future__ import annotations

import configparser
import os
import sys
import typing as t
from pathlib import Path

from ..state import get_state
from ..state import resolve_directory
from ..state import revision_cache_enabled
from .revision_cache import CachedLoad

_Revision = tuple[Path, dict[str, t.Any]]

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


def heads(directory: str | None, verbose: bool) -> list[str] | None:
    """Print the head as ``flask db heads`` does; None if Alembic must answer."""
    line = _straight_history(directory)
    if line is None:
        return None
    if line:
        path, head = line[0]
        _print(
            _log_entry(path, head, True) if verbose else f"{head['revision']} (head)"
        )
    return [declared["revision"] for _, declared in line[:1]]


def history(directory: str | None, verbose: bool) -> list[str] | None:
    """Print every revision, newest first, as ``flask db history`` does
    without a range or ``-i``; None if Alembic must answer."""
    line = _straight_history(directory)
    if line is None:
        return None
    for position, (path, declared) in enumerate(line):
        is_head = position == 0
        if verbose:
            _print(_log_entry(path, declared, is_head))
        else:
            down = declared["down_revision"] or "<base>"
            mark = " (head)" if is_head else ""
            doc = _longdoc(declared).split("\n\n")[0]
            _print(f"{down} -> {declared['revision']}{mark}, {doc}")
    return [declared["revision"] for _, declared in line]


def branches(directory: str | None) -> list[str] | None:
    """A straight history has no branch points: print nothing."""
    return None if _straight_history(directory) is None else []


def _straight_history(directory: str | None) -> list[_Revision] | None:
    """The revisions newest first, if the conditions above hold."""
    state = get_state()
    if state.migrate.configure_callbacks or not revision_cache_enabled():
        return None
    location = resolve_directory(state, directory)
    if not _plain_ini(os.path.join(location, "alembic.ini")):
        return None
    versions = Path(location, "versions").absolute()  # as Alembic keys it
    found = CachedLoad(Path(location), [versions], recursive=False).declared()
    return None if found is None else _in_line(found)


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


def _in_line(found: list[_Revision]) -> list[_Revision] | None:
    """Order the revisions from head to base; None unless they form one line."""
    by_id: dict[str, _Revision] = {}
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


def _longdoc(declared: dict[str, t.Any]) -> str:
    doc = declared["doc"]
    return doc.strip() if doc else ""


def _log_entry(path: Path, declared: dict[str, t.Any], is_head: bool) -> str:
    body = "\n".join(f"    {para}" for para in _longdoc(declared).splitlines())
    return (
        f"Rev: {declared['revision']}{' (head)' if is_head else ''}\n"
        f"Parent: {declared['down_revision'] or '<base>'}\n"
        f"Path: {path}\n"
        f"\n{body}\n"
    )


def _print(text: str) -> None:
    # As Alembic's Config.print_stdout: characters the terminal's encoding
    # cannot show are replaced, not fatal.
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    sys.stdout.write(text.encode(encoding, "replace").decode(encoding) + "\n")
