"""The env.py templates of every Flask-Migrate release from 2.0.0 to 4.1.0.

Releases are downloaded with pip at test time (never copied into this
repository) into a cache folder, and the four template folders of each are
extracted. Releases whose ``env.py``, ``script.py.mako`` and
``alembic.ini.mako`` are byte-identical share one :class:`TemplateGroup`.

The cache is ``<temp dir>/flask-migrate-ext-releases`` unless
``FLASK_MIGRATE_EXT_RELEASES_CACHE`` names another folder; a release already
there is not downloaded again. ``python3 tests/compat/releases.py`` fills the
cache and lists the groups.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import typing as t
import zipfile
from pathlib import Path

#: Every release, oldest first. Versions up to 2.1.0 exist as sdists only.
VERSIONS = (
    "2.0.0 2.0.1 2.0.2 2.0.3 2.0.4 2.1.0 2.1.1 2.2.0 2.2.1 2.3.0 2.3.1 2.4.0 2.5.0"
    " 2.5.1 2.5.2 2.5.3 2.6.0 2.7.0 3.0.0 3.0.1 3.1.0 4.0.0 4.0.1 4.0.2 4.0.3"
    " 4.0.4 4.0.5 4.0.6 4.0.7 4.1.0"
).split()

#: The templates' names, in the order groups are listed.
TEMPLATE_NAMES = ("flask", "flask-multidb", "aioflask", "aioflask-multidb")

#: The files that make a template; README (its one-line synopsis) is copied
#: but does not count when releases are compared.
COMPARED_FILES = ("env.py", "script.py.mako", "alembic.ini.mako")
TEMPLATE_FILES = (*COMPARED_FILES, "README")

CACHE_VARIABLE = "FLASK_MIGRATE_EXT_RELEASES_CACHE"
PARALLEL_DOWNLOADS = 6

_MEMBER = re.compile(
    r"(?:^|/)flask_migrate/templates/(?P<template>[^/]+)/(?P<file>[^/]+)$"
)


class ReleasesUnavailable(Exception):
    """A release could not be downloaded (no network, no index)."""


@dataclasses.dataclass(frozen=True)
class TemplateGroup:
    """One template as shipped, unchanged, by one or more releases."""

    template: str
    releases: tuple[str, ...]
    path: Path

    @property
    def id(self) -> str:
        """``flask@2.0.4-2.3.0``: the template, its first and last release."""
        first, last = self.releases[0], self.releases[-1]
        return f"{self.template}@{first}" + (f"-{last}" if last != first else "")

    @property
    def env_py(self) -> Path:
        return self.path / "env.py"

    def __str__(self) -> str:
        return self.id


def cache_dir() -> Path:
    """Where downloaded releases and extracted templates are kept."""
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "flask-migrate-ext-releases"


def _archive(folder: Path) -> Path | None:
    found = sorted(folder.glob("*.whl")) + sorted(folder.glob("*.tar.gz"))
    return found[0] if found else None


def download(version: str, cache: Path) -> Path:
    """The wheel or sdist of ``flask-migrate==version``, downloaded once.

    pip writes into a scratch folder renamed into place at the end, so an
    interrupted or concurrent download never leaves a half-written release.
    """
    folder = cache / version
    archive = _archive(folder)
    if archive is not None:
        return archive
    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=cache))
    try:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--no-deps"),
                *("--disable-pip-version-check", "--quiet", "--retries", "2"),
                *("-d", os.fspath(scratch), f"flask-migrate=={version}"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0 or _archive(scratch) is None:
            lines = (done.stderr or done.stdout).strip().splitlines()
            reason = lines[-1] if lines else f"pip exited with {done.returncode}"
            raise ReleasesUnavailable(f"flask-migrate=={version}: {reason}")
        try:
            scratch.rename(folder)
        except OSError:  # another session got there first
            if _archive(folder) is None:
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return t.cast(Path, _archive(folder))


def extract_templates(archive: Path) -> dict[str, dict[str, bytes]]:
    """``{template: {file name: content}}`` from a wheel or an sdist."""
    found: dict[str, dict[str, bytes]] = {}

    def add(name: str, read: t.Callable[[], bytes]) -> None:
        match = _MEMBER.search(name)
        if match and match["file"] in TEMPLATE_FILES:
            found.setdefault(match["template"], {})[match["file"]] = read()

    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            for name in wheel.namelist():
                add(name, functools.partial(wheel.read, name))
    else:
        with tarfile.open(archive) as sdist:
            for member in sdist.getmembers():
                if member.isfile():
                    add(member.name, functools.partial(_read_member, sdist, member))
    return found


def _read_member(sdist: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    stream = sdist.extractfile(member)
    assert stream is not None
    with stream:
        return stream.read()


def _digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in COMPARED_FILES:
        content = files.get(name, b"")
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()[:12]


def _write_template(target: Path, files: dict[str, bytes]) -> None:
    if target.is_dir():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for name, content in files.items():
            (scratch / name).write_bytes(content)
        try:
            scratch.rename(target)
        except OSError:  # another session got there first
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def download_all(cache: Path, versions: t.Sequence[str] = VERSIONS) -> dict[str, Path]:
    """Each release's archive, downloading those not in ``cache`` yet."""
    with concurrent.futures.ThreadPoolExecutor(PARALLEL_DOWNLOADS) as pool:
        futures = {
            pool.submit(download, version, cache): version for version in versions
        }
        try:
            archives = {
                futures[future]: future.result()
                for future in concurrent.futures.as_completed(futures)
            }
        except BaseException:
            # Offline, every download fails the same way: stop at the first.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return {version: archives[version] for version in versions}


def template_groups(cache: Path | None = None) -> list[TemplateGroup]:
    """Every distinct template of every release, extracted under ``cache``.

    Listed by template (:data:`TEMPLATE_NAMES` order), then by first release.
    """
    cache = cache_dir() if cache is None else cache
    members: dict[tuple[str, str], list[str]] = {}
    contents: dict[tuple[str, str], dict[str, bytes]] = {}
    for version, archive in download_all(cache).items():
        for template, files in extract_templates(archive).items():
            missing = set(COMPARED_FILES) - set(files)
            if missing:
                raise ValueError(f"{archive.name}: {template} lacks {sorted(missing)}")
            key = (template, _digest(files))
            members.setdefault(key, []).append(version)
            contents.setdefault(key, files)
    groups = []
    for (template, digest), releases in members.items():
        path = cache / "templates" / f"{template}-{digest}"
        _write_template(path, contents[template, digest])
        groups.append(TemplateGroup(template, tuple(releases), path))

    def order(group: TemplateGroup) -> tuple[int, int]:
        known = TEMPLATE_NAMES.index(group.template)
        return known, VERSIONS.index(group.releases[0])

    return sorted(groups, key=order)


@functools.cache
def corpus() -> tuple[TemplateGroup, ...]:
    """:func:`template_groups` of the default cache, computed once per process."""
    return tuple(template_groups())


def group_of(template: str, version: str) -> TemplateGroup:
    """The group holding ``template`` as released in ``version``."""
    for group in corpus():
        if group.template == template and version in group.releases:
            return group
    raise LookupError(f"flask-migrate {version} has no template {template!r}")


if __name__ == "__main__":
    for group in template_groups():
        print(f"{group.id:40} {group.path}")
