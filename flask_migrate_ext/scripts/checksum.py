"""The checksum of a revision script, as the ledger records it.

A script counts as edited when its text changes, not when an editor or Git
rewrites its line endings or trims trailing spaces: lines are compared with
line endings (CRLF, CR, LF) made alike and trailing whitespace removed,
and blank lines at the end ignored. Everything else counts, comments
included: they are part of what was reviewed.
"""

from __future__ import annotations

import hashlib
import os

#: The algorithm, kept in the ledger next to each checksum (``sha256:...``)
#: so a later change of normalisation can tell old checksums from new ones.
PREFIX = "sha256:"


def normalised(data: bytes) -> bytes:
    """``data`` with line endings and trailing whitespace normalised."""
    lines = [line.rstrip() for line in data.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return b"\n".join(lines)


def checksum_of(data: bytes) -> str:
    return PREFIX + hashlib.sha256(normalised(data)).hexdigest()


def script_checksum(path: str | os.PathLike[str] | None) -> str | None:
    """The checksum of the file at ``path``; None if it cannot be read."""
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return checksum_of(f.read())
    except OSError:
        return None
