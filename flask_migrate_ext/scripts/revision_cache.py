"""Build the revision graph without executing every revision file.

Alembic learns a revision's id, parents, branch labels and docstring by
executing its file; with a long history that is most of what ``heads``,
``history`` or ``current`` cost. This module keeps what those files
declared in ``<migrations>/.flask_migrate_ext/revision-graph.json`` and hands
Alembic :class:`~alembic.script.Script` objects whose module is only
executed when something beyond those attributes is needed (``upgrade()``
when the revision actually runs).

The cache is never trusted blindly. Every run lists the version folders and
stats every file; a file is taken from the cache only if its path, size,
inode, mtime and ctime are unchanged (a write always moves the ctime, even
when the mtime is put back) *and* it changed last more than
:data:`RACY_WINDOW_NS` before the cache was written (so a coarse filesystem
clock cannot hide an edit made in the same second: the "racy git" rule).
Otherwise its content hash decides. Added, removed and renamed files change
the listing itself. Anything unexpected (an unreadable or unwritable cache,
values that are not plain strings) falls back to executing the files, as
Alembic does.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import types
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    from alembic.script import Script
    from alembic.script import ScriptDirectory

#: Where the cache lives, inside the migration folder.
CACHE_DIR = ".flask_migrate_ext"
CACHE_FILE = "revision-graph.json"
#: Bumped whenever the file's layout or meaning changes.
FORMAT = 1
#: Files modified this close to the cache's creation are checked by content:
#: some filesystems keep mtimes in whole (or even two) seconds.
RACY_WINDOW_NS = 2_000_000_000

_Declared = dict[str, t.Any]


def install(script: ScriptDirectory) -> ScriptDirectory:
    """Make ``script`` build its revision map through the cache.

    ``sourceless`` folders are left to Alembic: whether a ``.pyc`` file
    counts there depends on which other files exist.
    """
    from alembic.script.revision import RevisionMap

    if script.sourceless:
        return script
    load = CachedLoad(
        Path(script.dir),
        script._version_locations,
        script.recursive_version_locations,
        script,
    )
    script.revision_map = RevisionMap(load.scripts)
    return script


class LazyModule(types.ModuleType):
    """Stands in for a revision module: answers what the file declared
    (``revision``, ``down_revision``, ...) from the cache, and executes the
    file the first time anything else is asked for (``dir()`` included;
    ``vars()`` only shows the file's names once it was executed)."""

    def __init__(self, path: str, declared: _Declared) -> None:
        # A plain string, shared with the Script (a Path per revision is
        # ~0.4 KB more, 0.4 MB for a 1000-revision history).
        super().__init__(os.path.splitext(os.path.basename(path))[0], declared["doc"])
        self.__file__ = path
        self.revision = declared["revision"]
        self.down_revision = _tupled(declared["down_revision"])
        self.branch_labels = _tupled(declared["branch_labels"])
        self.depends_on = _tupled(declared["depends_on"])
        self._lazy_path = path
        self._lazy_module: types.ModuleType | None = None
        #: The Script this module stands in for, until the file is executed.
        self._lazy_script: Script | None = None

    def __getattr__(self, name: str) -> t.Any:
        if name.startswith("__") or name == "_alembic_source_encoding":
            raise AttributeError(name)
        return getattr(self._load(), name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(dir(self._load())))

    def _load(self) -> types.ModuleType:
        """Execute the file; its names are copied in, so ``vars()`` of this
        module is complete from then on. The Script gets the executed module
        itself: this stand-in, its copies and what it kept from the cache
        are freed (~1 KB a revision that ran)."""
        if self._lazy_module is None:
            from alembic.util import load_python_file

            folder, filename = os.path.split(self._lazy_path)
            module = load_python_file(folder, filename)
            self._lazy_module = module
            for name, value in vars(module).items():
                self.__dict__.setdefault(name, value)
            script, self._lazy_script = self._lazy_script, None
            if script is not None and script.module is self:
                script.module = module
        return self._lazy_module


class CachedLoad:
    """One pass over the version folders: what Alembic's own
    ``ScriptDirectory._load_revisions`` yields, in the same order, with the
    same duplicate-file warning, but from the cache where it is valid."""

    def __init__(
        self,
        directory: Path,
        locations: t.Sequence[Path],
        recursive: bool,
        script: ScriptDirectory | None = None,
    ) -> None:
        #: Alembic's view of the folder, for executing files (``scripts()``).
        self.script = script
        self.path = directory / CACHE_DIR / CACHE_FILE
        self.locations = list(locations)
        self.recursive = bool(recursive)
        self.key = {
            "format": FORMAT,
            "recursive": self.recursive,
            "locations": [os.fspath(p) for p in self.locations],
        }

    def declared(self) -> list[tuple[Path, _Declared]] | None:
        """Every revision file's declarations, if the cache holds all of them
        and every file is verifiably unchanged; else None (then only
        executing files can tell). Needs no Alembic."""
        cached = self._read()
        if not cached:
            return None
        known = cached["files"]
        found = []
        names = set()
        for path, stat, duplicate in self._listing():
            if duplicate:
                return None
            name = os.fspath(path)
            names.add(name)
            entry = known.get(name)
            if entry is None or not _verified(entry, path, stat, cached["written_ns"]):
                return None
            if entry["declared"] is not None:
                found.append((path, entry["declared"]))
        return found if names == set(known) else None

    def fingerprint(self) -> tuple[tuple[t.Any, ...], int]:
        """The cache file's and every listed file's stat, read without
        opening any of them, and the latest change time among them: an equal
        fingerprint taken :data:`RACY_WINDOW_NS` after that time means
        nothing in the folder changed."""
        stats = [(path, stat) for path, stat, _ in self._entries()]
        try:
            stats.append(("", os.stat(self.path)))
        except OSError:
            pass
        key = tuple(
            (name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            for name, st in stats
        )
        latest = max(
            (max(st.st_mtime_ns, st.st_ctime_ns) for _, st in stats), default=0
        )
        return key, latest

    def scripts(self) -> t.Iterator[Script]:
        from alembic.script import Script
        from alembic.util import warn

        assert self.script is not None
        started = time.time_ns()
        cached = self._read()
        known: dict[str, dict[str, t.Any]] = cached.get("files", {})
        written_ns: int = cached.get("written_ns", 0)
        entries: dict[str, dict[str, t.Any]] = {}
        cacheable = True
        rehashed = False  # entries verified by content get a fresh timestamp
        for path, stat, duplicate in self._listing():
            if duplicate:
                warn(
                    f"File {path} loaded twice! ignoring. "
                    "Please ensure version_locations is unique."
                )
                continue
            name = os.fspath(path)
            entry = known.get(name)
            digest = None
            if entry is not None and not _untouched(entry, stat, written_ns):
                digest = _digest(path)
                rehashed = True
                if digest != entry["sha"]:
                    entry = None
            if entry is not None:
                fields = _stat_fields(stat)
                if any(entry.get(k) != v for k, v in fields.items()):
                    entry = {**entry, **fields}
                entries[name] = entry
                declared = entry["declared"]
                if declared is not None:
                    module = LazyModule(name, declared)
                    module._lazy_script = Script(module, declared["revision"], name)
                    yield module._lazy_script
                continue
            digest = digest or _digest(path)
            found = Script._from_path(self.script, path)
            declared = _declared(found) if found is not None else None
            cacheable = cacheable and (found is None or declared is not None)
            entries[name] = {**_stat_fields(stat), "sha": digest, "declared": declared}
            if found is not None:
                yield found
        if cacheable and (rehashed or not cached or entries != known):
            self._write({**self.key, "written_ns": started, "files": entries})

    def _listing(self) -> t.Iterator[tuple[Path, os.stat_result, bool]]:
        """Every file Alembic would consider, resolved as Alembic resolves
        it, with its stat and whether an earlier one resolved to the same
        file; symlinks are the only files resolved one by one."""
        for real, stat, duplicate in self._entries():
            yield Path(real), stat, duplicate

    def _entries(self) -> t.Iterator[tuple[str, os.stat_result, bool]]:
        """:meth:`_listing` with plain string paths (cheaper to make)."""
        seen: set[str] = set()
        for location in self.locations:
            if not location.is_dir():
                continue
            for folder in _folders(location, self.recursive):
                real_folder = os.path.realpath(folder)
                with os.scandir(folder) as it:
                    files = sorted(
                        (e for e in it if not e.is_dir()), key=lambda e: e.name
                    )
                for entry in files:
                    if entry.is_symlink():
                        real = os.path.realpath(entry.path)
                    else:
                        real = os.path.join(real_folder, entry.name)
                    duplicate = real in seen
                    seen.add(real)
                    yield real, entry.stat(), duplicate

    def _read(self) -> dict[str, t.Any]:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or any(
            data.get(k) != v for k, v in self.key.items()
        ):
            return {}
        files = data.get("files")
        if not isinstance(data.get("written_ns"), int) or not isinstance(files, dict):
            return {}
        if not all(_well_formed(entry) for entry in files.values()):
            return {}
        return data

    def _write(self, data: dict[str, t.Any]) -> None:
        folder = self.path.parent
        try:
            folder.mkdir(exist_ok=True)
            ignore = folder / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Created by flask-migrate-ext: a cache.\n*\n")
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, separators=(",", ":"))
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass  # A read-only checkout: work without the cache.


def _folders(location: Path, recursive: bool) -> t.Iterator[str]:
    """The folders Alembic reads revisions from: ``location``, and with
    ``recursive_version_locations`` its subfolders in sorted order, except
    ``__pycache__``."""
    if not recursive:
        yield os.fspath(location)
        return
    for root, dirs, _files in os.walk(location):
        dirs.sort()
        if not os.path.basename(root).endswith("__pycache__"):
            yield root


def _verified(
    entry: dict[str, t.Any], path: Path, stat: os.stat_result, written_ns: int
) -> bool:
    return _untouched(entry, stat, written_ns) or _digest(path) == entry["sha"]


def _untouched(entry: dict[str, t.Any], stat: os.stat_result, written_ns: int) -> bool:
    """Whether the file is provably the one the entry was made from, without
    reading it: same stat, and modified well before the cache was written."""
    same = all(entry.get(k) == v for k, v in _stat_fields(stat).items())
    changed_ns = max(stat.st_mtime_ns, stat.st_ctime_ns)
    return same and changed_ns < written_ns - RACY_WINDOW_NS


def _well_formed(entry: t.Any) -> bool:
    """Whether a cache entry has the shape this version writes (a cache
    edited by hand, or cut short, is ignored rather than trusted)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("sha"), str):
        return False
    declared = entry.get("declared")
    if declared is not None and (
        not isinstance(declared, dict)
        or not isinstance(declared.get("revision"), str)
        or not {"down_revision", "branch_labels", "depends_on", "doc"} <= set(declared)
    ):
        return False
    return True


def _stat_fields(stat: os.stat_result) -> dict[str, int]:
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "ino": stat.st_ino,
    }


def _digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def _declared(script: Script) -> _Declared | None:
    """What the cache keeps of a revision file; None if it holds anything
    but strings (then the file is executed on every run, as before)."""
    module = script.module
    if hasattr(module, "_alembic_source_encoding"):
        return None
    declared = {
        "revision": script.revision,
        "down_revision": getattr(module, "down_revision", None),
        "branch_labels": getattr(module, "branch_labels", None),
        "depends_on": getattr(module, "depends_on", None),
        "doc": module.__doc__,
    }
    for value in declared.values():
        if isinstance(value, (tuple, list)):
            if not all(isinstance(item, str) for item in value):
                return None
        elif value is not None and not isinstance(value, str):
            return None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in declared.items()}


def _tupled(value: t.Any) -> t.Any:
    return tuple(value) if isinstance(value, list) else value
