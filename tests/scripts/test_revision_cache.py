"""The revision-graph cache: revision files are not executed when unchanged,
and no change to the version folder, however small or quick, goes unseen."""

from __future__ import annotations

import json
import os
import sys
import time
import typing as t
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask import Flask

from flask_migrate_ext import ExitCode
from flask_migrate_ext.scripts import revision_cache
from helpers import invoke
from helpers import version_rows
from helpers import write_revision

#: Appended to each revision file written here: counts its executions.
LOADS = "import sys; sys._fmx_revision_loads = sys._fmx_revision_loads + 1\n"


def loads() -> int:
    return t.cast(int, getattr(sys, "_fmx_revision_loads", 0))


@pytest.fixture(autouse=True)
def _reset_counter() -> t.Iterator[None]:
    sys._fmx_revision_loads = 0  # type: ignore[attr-defined]
    yield
    del sys._fmx_revision_loads  # type: ignore[attr-defined]


def add(
    versions: Path, revision: str, down: str | None, *, name: str | None = None
) -> Path:
    write_revision(versions, revision, down, "pass", "pass")
    path = versions / f"{revision}.py"
    path.write_text(path.read_text() + LOADS)
    if name is not None:
        path = path.rename(versions / name)
    return path


def age(*paths: Path, seconds: float = 60) -> None:
    """Make files look modified long ago, past the cache's same-second
    check. (Only the mtime moves: the ctime is now, and a cache written now
    is younger than that, so the rule still applies to the ctime.)"""
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "migrations" / ".flask_migrate_ext" / "revision-graph.json"


def heads(app: Flask, *args: str) -> str:
    result = invoke(app, "heads", *args)
    assert result.exit_code == 0, result.output
    return t.cast(str, result.stdout)


def settle(tmp_path: Path) -> None:
    """Pretend the cache was written long after every file last changed,
    as it is in real use, so that stat alone is trusted."""
    path = cache_file(tmp_path)
    data = json.loads(path.read_text())
    data["written_ns"] = time.time_ns() + 10 * revision_cache.RACY_WINDOW_NS
    path.write_text(json.dumps(data))


def test_second_run_executes_no_revision_file(
    app: Flask, versions: Path, tmp_path: Path
) -> None:
    add(versions, "r1", None)
    add(versions, "r2", "r1")
    assert heads(app) == "r2 (head)\n"
    assert loads() == 2
    assert cache_file(tmp_path).exists()
    settle(tmp_path)
    assert heads(app) == "r2 (head)\n"
    assert invoke(app, "history").stdout == "r1 -> r2 (head), r2\n<base> -> r1, r1\n"
    assert "Path: " + str(versions / "r2.py") in heads(app, "--verbose")
    assert loads() == 2


def test_cache_folder_is_ignored_by_git(
    app: Flask, versions: Path, tmp_path: Path
) -> None:
    add(versions, "r1", None)
    heads(app)
    ignore = cache_file(tmp_path).parent / ".gitignore"
    assert ignore.read_text().splitlines()[-1] == "*"


def test_upgrade_runs_cached_revisions(
    app: Flask, versions: Path, tmp_path: Path, sqlite_url: str
) -> None:
    add(versions, "r1", None)
    write_revision(
        versions,
        "r2",
        "r1",
        "op.create_table('t2', sa.Column('id', sa.Integer, primary_key=True))",
        "op.drop_table('t2')",
    )
    heads(app)
    settle(tmp_path)
    before = loads()
    result = invoke(app, "upgrade")
    assert result.exit_code == 0, result.output
    assert version_rows(sqlite_url) == ["r2"]
    assert loads() == before + 1  # r1 runs (r2 has no counter)
    assert invoke(app, "downgrade", "base").exit_code == 0
    assert version_rows(sqlite_url) == []


def test_added_file(app: Flask, versions: Path, tmp_path: Path) -> None:
    add(versions, "r1", None)
    heads(app)
    settle(tmp_path)
    add(versions, "r2", "r1")
    assert heads(app) == "r2 (head)\n"


def test_removed_file(app: Flask, versions: Path, tmp_path: Path) -> None:
    add(versions, "r1", None)
    r2 = add(versions, "r2", "r1")
    heads(app)
    settle(tmp_path)
    r2.unlink()
    assert heads(app) == "r1 (head)\n"


def test_renamed_file(app: Flask, versions: Path, tmp_path: Path) -> None:
    add(versions, "r1", None)
    r2 = add(versions, "r2", "r1")
    heads(app)
    settle(tmp_path)
    r2.rename(versions / "r2_renamed.py")
    assert "Path: " + str(versions / "r2_renamed.py") in heads(app, "--verbose")


def test_edit_in_the_same_second_with_same_size(app: Flask, versions: Path) -> None:
    """The edit a stat cannot see: same size, same mtime, right after the
    cache was written."""
    add(versions, "r1", None)
    add(versions, "r2", "r1")
    r3 = add(versions, "r3", "r1")
    assert heads(app) == "r2 (head)\nr3 (head)\n"
    stat = r3.stat()
    r3.write_text(
        r3.read_text().replace("down_revision = 'r1'", "down_revision = 'r2'")
    )
    os.utime(r3, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert r3.stat().st_size == stat.st_size
    assert heads(app) == "r3 (head)\n"


def test_edit_with_the_old_mtime_put_back(
    app: Flask, versions: Path, tmp_path: Path
) -> None:
    """Long after the cache was written, a file is rewritten and its mtime
    restored (as ``cp -p`` or ``touch -r`` do): the ctime still moves."""
    add(versions, "r1", None)
    add(versions, "r2", "r1")
    r3 = add(versions, "r3", "r1")
    age(*versions.glob("*.py"))
    heads(app)
    settle(tmp_path)
    stat = r3.stat()
    time.sleep(0.01)
    r3.write_text(
        r3.read_text().replace("down_revision = 'r1'", "down_revision = 'r2'")
    )
    os.utime(r3, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert heads(app) == "r3 (head)\n"


def test_docstring_edit_shows_in_history(
    app: Flask, versions: Path, tmp_path: Path
) -> None:
    r1 = add(versions, "r1", None)
    heads(app)
    settle(tmp_path)
    r1.write_text(r1.read_text().replace('"""r1"""', '"""first table"""'))
    assert invoke(app, "history").stdout == "<base> -> r1 (head), first table\n"


def test_touched_but_unchanged_file_is_not_executed(
    app: Flask, versions: Path, tmp_path: Path
) -> None:
    r1 = add(versions, "r1", None)
    heads(app)
    settle(tmp_path)
    r1.touch()
    before = loads()
    assert heads(app) == "r1 (head)\n"
    assert loads() == before  # the content hash matched


@pytest.mark.parametrize(
    "content",
    ["", "not json", "[]", '{"format": 1}', "null"],
)
def test_damaged_cache_is_rebuilt(
    app: Flask, versions: Path, tmp_path: Path, content: str
) -> None:
    add(versions, "r1", None)
    heads(app)
    cache_file(tmp_path).write_text(content)
    assert heads(app) == "r1 (head)\n"
    assert (
        json.loads(cache_file(tmp_path).read_text())["format"] == revision_cache.FORMAT
    )


def test_cache_entry_edited_by_hand_is_not_trusted(
    app: Flask, versions: Path, tmp_path: Path
) -> None:
    add(versions, "r1", None)
    heads(app)
    data = json.loads(cache_file(tmp_path).read_text())
    for entry in data["files"].values():
        del entry["declared"]["revision"]
    cache_file(tmp_path).write_text(json.dumps(data))
    assert heads(app) == "r1 (head)\n"


def test_unwritable_cache_location(app: Flask, versions: Path, tmp_path: Path) -> None:
    (tmp_path / "migrations" / ".flask_migrate_ext").write_text("in the way")
    add(versions, "r1", None)
    assert heads(app) == "r1 (head)\n"
    assert heads(app) == "r1 (head)\n"
    assert loads() == 2


def test_disabled_by_config(app: Flask, versions: Path, tmp_path: Path) -> None:
    app.config["MIGRATE_REVISION_CACHE"] = False
    add(versions, "r1", None)
    heads(app)
    heads(app)
    assert loads() == 2
    assert not cache_file(tmp_path).parent.exists()


def test_broken_graph_is_reported_on_every_run(app: Flask, versions: Path) -> None:
    add(versions, "r1", None)
    add(versions, "r2", "gone")
    for _ in range(2):
        result = invoke(app, "heads")
        assert result.exit_code == ExitCode.ERROR
        assert "revises 'gone'" in result.stderr


def test_same_scripts_as_alembic(tmp_path: Path) -> None:
    """The cached listing matches Alembic's own: nested folders (recursive
    version locations), a symlinked file, files that are not revisions."""
    from alembic.config import Config

    top = tmp_path / "m"
    (top / "versions" / "b" / "__pycache__").mkdir(parents=True)
    (top / "versions" / "a").mkdir()
    (top / "elsewhere").mkdir()
    add(top / "versions", "r1", None)
    add(top / "versions" / "b", "r3", "r2")
    add(top / "versions" / "a", "r2", "r1")
    add(top / "elsewhere", "r4", "r3")
    (top / "versions" / "r4.py").symlink_to(top / "elsewhere" / "r4.py")
    (top / "versions" / "README").write_text("not a revision")
    (top / "versions" / "__init__.py").write_text("")
    config = Config()
    config.set_main_option("script_location", os.fspath(top))
    config.set_main_option("recursive_version_locations", "true")

    def described(script: ScriptDirectory) -> list[tuple[str, str, str | None, str]]:
        return [
            (
                s.revision,
                os.fspath(s.path),
                t.cast("str | None", s.down_revision),
                s.doc,
            )
            for s in script.walk_revisions()
        ]

    expected = described(ScriptDirectory.from_config(config))
    for _ in range(2):
        cached = revision_cache.install(ScriptDirectory.from_config(config))
        assert described(cached) == expected
    assert [r for r, *_ in expected] == ["r4", "r3", "r2", "r1"]
    assert expected[0][1] == os.fspath(top / "elsewhere" / "r4.py")


def test_executed_revision_replaces_its_stand_in(tmp_path: Path) -> None:
    """Once a cached revision's file runs, its Script holds the executed
    module: the stand-in (and its copies of the module's names) is freed."""
    from alembic.config import Config

    top = tmp_path / "m"
    (top / "versions").mkdir(parents=True)
    add(top / "versions", "r1", None)
    add(top / "versions", "r2", "r1")
    config = Config()
    config.set_main_option("script_location", os.fspath(top))
    revision_cache.install(ScriptDirectory.from_config(config)).get_revision("r2")
    age(*(top / "versions").glob("*.py"))
    script = revision_cache.install(ScriptDirectory.from_config(config))
    found = script.get_revision("r2")
    assert found is not None
    stand_in = found.module
    assert isinstance(stand_in, revision_cache.LazyModule)
    assert loads() == 2  # from the first listing only
    assert callable(stand_in.upgrade)  # runs the file
    assert loads() == 3
    assert found.module is not stand_in
    assert not isinstance(found.module, revision_cache.LazyModule)
    assert found.module.upgrade is stand_in.upgrade
    assert found.path == stand_in.__file__ == os.fspath(top / "versions" / "r2.py")
    assert script.get_revision("r1").module.revision == "r1"  # not executed
    assert loads() == 3


def test_files_changed_near_the_cache_write_are_checked_by_content(
    tmp_path: Path,
) -> None:
    """On a filesystem with coarse timestamps an edit made just after the
    cache was written can keep every stat field; such files are hashed."""
    path = tmp_path / "r1.py"
    path.write_text("revision = 'r1'\n")
    stat = path.stat()
    entry = revision_cache._stat_fields(stat)
    changed = max(stat.st_mtime_ns, stat.st_ctime_ns)
    window = revision_cache.RACY_WINDOW_NS
    assert not revision_cache._untouched(entry, stat, changed)
    assert not revision_cache._untouched(entry, stat, changed + window)
    assert revision_cache._untouched(entry, stat, changed + window + 1)
    assert not revision_cache._untouched(
        {**entry, "size": 1}, stat, changed + 2 * window
    )


@pytest.mark.parametrize(
    "heads",
    [(), ("r1",), ("r4",), ("r3", "r5"), ("r2", "r5"), ("r6",), ("r3", "r6")],
)
def test_current_revisions_as_alembic_finds_them(
    tmp_path: Path, heads: tuple[str, ...]
) -> None:
    """``graph.current_revisions`` is Alembic's ``get_all_current``, faster:
    a branch point, a merge, and a dependency between branches."""
    from alembic.config import Config

    from flask_migrate_ext.scripts import graph

    versions = tmp_path / "m" / "versions"
    versions.mkdir(parents=True)
    add(versions, "r1", None)
    add(versions, "r2", "r1")
    add(versions, "r3", "r2")
    add(versions, "r4", "r1")
    add(versions, "r5", "r4")
    add(versions, "r6", ("r3", "r5"))
    (versions / "r5.py").write_text(
        (versions / "r5.py")
        .read_text()
        .replace("depends_on = None", "depends_on = 'r2'")
    )
    config = Config()
    config.set_main_option("script_location", os.fspath(tmp_path / "m"))
    script = ScriptDirectory.from_config(config)
    expected = {s.revision for s in script.get_all_current(heads)}
    assert {s.revision for s in graph.current_revisions(script, heads)} == expected
