"""Load the revision graph, and explain a broken one by naming files.

Alembic reports a ``down_revision`` that points nowhere as a bare
``KeyError`` and a duplicated revision id as a warning (then silently keeps
one of the two files). Both are errors here, naming the files involved.
"""

from __future__ import annotations

import os
import re
import traceback
import typing as t
import warnings
from pathlib import Path

from alembic import util as alembic_util
from alembic.config import Config
from alembic.script import Script
from alembic.script import ScriptDirectory

from ..errors import first_line
from ..errors import MigrationFailedError
from ..errors import RevisionGraphError
from ..errors import UnknownRevisionError
from . import revision_cache

if t.TYPE_CHECKING:
    from alembic.runtime.migration import MigrationStep

_DUPLICATE = re.compile(r"Revision (\S+) is present more than once")
_MISSING = re.compile(r"Revision (\S+) referenced from (.+) is not present")
_ASSIGNMENT = r"^{name}\s*(?::[^=\n]*)?=\s*(.+)$"


def scripts(config: Config) -> ScriptDirectory:
    """The migration scripts of ``config``, graph built and checked.

    Revision files are read through :mod:`.revision_cache` unless the config
    says otherwise (``MIGRATE_REVISION_CACHE = False``).
    """
    script = ScriptDirectory.from_config(config)
    if config.attributes.get("revision_cache", True):
        revision_cache.install(script)
    return load(script)


def load(script: ScriptDirectory) -> ScriptDirectory:
    """Build ``script``'s revision map now, raising :class:`RevisionGraphError`
    if it is broken."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            script.get_heads()
        except KeyError as e:
            missing = str(e.args[0]) if e.args else "?"
            raise RevisionGraphError(_missing_message(script, missing)) from None
        except Exception as e:
            broken = _unloadable_file(script)
            if broken is None:
                raise
            raise RevisionGraphError(broken) from e
    for warning in caught:
        text = str(warning.message)
        duplicate = _DUPLICATE.search(text)
        if duplicate:
            revision = duplicate.group(1)
            files = ", ".join(str(p) for p in _files_declaring(script, revision))
            raise RevisionGraphError(
                f"Revision id {revision!r} is used by more than one file: {files}."
                " Give one of them a new id (and update what revises it)."
            )
        reference = _MISSING.search(text)
        if reference:
            raise RevisionGraphError(_missing_message(script, reference.group(1)))
    return script


def check_known(
    script: ScriptDirectory,
    heads: t.Iterable[str],
    database: str = "",
    command: str = "db",
) -> None:
    """Raise :class:`UnknownRevisionError` if a revision the version table
    holds (``heads``, as read from the database) is defined by no script."""
    from alembic.script.revision import ResolutionError

    for head in heads:
        try:
            script.revision_map.get_revision(head)
        except ResolutionError:
            message = unknown_revision_message(script, head, database, command)
            raise UnknownRevisionError(message) from None


def unknown_revision_message(
    script: ScriptDirectory | str,
    revision: str,
    database: str = "",
    command: str = "db",
) -> str:
    """What to say when a database is at a revision no script defines.

    :param script: The scripts, or the folder of their versions.
    """
    label = f"Database {database!r}" if database else "The database"
    folder = _shown(script if isinstance(script, str) else script.versions)
    return (
        f"{label} is at revision {revision!r}, which no script in {folder}"
        " defines: is the code older than the database (a rolled-back deploy,"
        " another branch)? Deploy the code that has it; if it is gone for good,"
        f" 'flask {command} stamp --purge <revision>' records what the schema"
        " matches."
    )


def current_revisions(script: ScriptDirectory, heads: tuple[str, ...]) -> list[Script]:
    """The revisions ``current`` shows for a version table holding ``heads``:
    Alembic's ``get_all_current``, in linear time.

    Alembic keeps each revision among ``heads`` and their ancestors unless
    one of its descendants is among them too, walking the descendants of
    every ancestor (quadratic: most of ``current`` on a long history). The
    set is closed under ancestors, so it is enough to ask whether a direct
    child is in it.
    """
    revision_map = script.revision_map
    top = [rev for rev in revision_map.get_revisions(heads) if rev is not None]
    members = {
        rev
        for rev in [*top, *revision_map._get_ancestor_nodes(top)]
        if isinstance(rev, Script)
    }
    ids = {rev.revision for rev in members}
    return [rev for rev in members if not (rev.nextrev & ids)]


def applied_ids(script: ScriptDirectory, heads: t.Iterable[str]) -> set[str]:
    """The revisions a version table holding ``heads`` has applied: the
    heads and all their ancestors (dependencies included). Unknown ids are
    left out."""
    revision_map = script.revision_map
    known = [head for head in heads if head in revision_map._revision_map]
    top = [rev for rev in revision_map.get_revisions(known) if rev is not None]
    return {
        rev.revision
        for rev in [*top, *revision_map._get_ancestor_nodes(top)]
        if isinstance(rev, Script)
    }


def _missing_message(script: ScriptDirectory, missing: str) -> str:
    files = [str(p) for p in _files_referring_to(script, missing)]
    where = f"{', '.join(files)} revises" if files else "A revision revises"
    return (
        f"{where} {missing!r}, which no file in the migration directory"
        " defines. Restore that revision's file, or fix down_revision."
    )


def plan_steps(
    script: ScriptDirectory, action: str, destination: t.Any, heads: t.Any
) -> list[MigrationStep]:
    """The steps of an upgrade, downgrade or stamp from ``heads`` to
    ``destination``, found as ``alembic.command`` does; a revision file that
    cannot run is named before any step runs.

    :raises MigrationFailedError: A planned revision's file cannot run.
    """
    planned: t.Iterable[MigrationStep]
    try:
        if action == "upgrade":
            planned = script._upgrade_revs(destination, heads)
        elif action == "downgrade":
            planned = script._downgrade_revs(destination, heads)
        else:
            planned = script._stamp_revs(alembic_util.to_tuple(destination), heads)
        return list(planned)
    except (AttributeError, ImportError, SyntaxError, NameError) as e:
        problem = unrunnable(script, action)
        if problem is None:
            raise
        raise MigrationFailedError(problem) from e


def unrunnable(script: ScriptDirectory, action: str) -> str | None:
    """Why a revision cannot run ``action`` (``upgrade``/``downgrade``): its
    file cannot be executed (the revision cache executes it only now), or
    lacks the function. Looked for after planning the steps failed."""
    for found in script.walk_revisions():
        path = Path(found.path)
        try:
            module = found.module
            if hasattr(module, "_lazy_path"):
                module._load()
        except Exception as e:
            return f"Revision {found.revision} cannot run: {load_error(path, e)}"
        if not callable(getattr(module, action, None)):
            return (
                f"Revision {found.revision} cannot run: {path} has no"
                f" {action}() function."
            )
    return None


def _unloadable_file(script: ScriptDirectory) -> str | None:
    """Which revision file cannot be loaded, and why, in one line; found by
    loading each file (only after building the graph failed)."""
    for path in _version_files(script):
        try:
            Script._from_path(script, path)
        except Exception as e:
            return load_error(path, e)
    return None


def load_error(path: Path, error: BaseException) -> str:
    """``path, line N: cannot be loaded: <error>``, the line where known."""
    if isinstance(error, TypeError) and "NoneType" in str(error):
        reason = "its revision id is not set (revision = None)"
    else:
        summary = first_line(getattr(error, "msg", None) or error)
        reason = f"{type(error).__name__}: {summary}".rstrip(": ")
    line = getattr(error, "lineno", None) if isinstance(error, SyntaxError) else None
    if line is None:
        for frame in traceback.extract_tb(error.__traceback__):
            if frame.filename == os.fspath(path):
                line = frame.lineno
    where = f", line {line}" if line else ""
    return f"{path}{where}: cannot be loaded: {reason}"


def _shown(path: Path | str) -> str:
    """``path`` relative to the working directory where it can be."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return os.fspath(path)


def _version_files(script: ScriptDirectory) -> list[Path]:
    locations = script.version_locations or [script.versions]
    files: list[Path] = []
    for location in locations:
        files.extend(sorted(Path(location).glob("*.py")))
    return files


def _assigned(source: str, name: str) -> str:
    match = re.search(_ASSIGNMENT.format(name=name), source, re.MULTILINE)
    return match.group(1) if match else ""


def _files_declaring(script: ScriptDirectory, revision: str) -> list[Path]:
    return [
        path
        for path in _version_files(script)
        if revision in _assigned(path.read_text(errors="replace"), "revision")
    ]


def _files_referring_to(script: ScriptDirectory, revision: str) -> list[Path]:
    found = []
    for path in _version_files(script):
        source = path.read_text(errors="replace")
        if revision in _assigned(source, "down_revision") or revision in _assigned(
            source, "depends_on"
        ):
            found.append(path)
    return found
