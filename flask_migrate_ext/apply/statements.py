"""What a revision's statements were, for its failure report: which ones
MySQL commits at (DDL), their kinds counted, and the line of the revision
file where it failed."""

from __future__ import annotations

import linecache
import re
import traceback
import typing as t

_DDL = re.compile(r"\s*(?:CREATE|ALTER|DROP|RENAME|TRUNCATE)\b", re.IGNORECASE)
_KIND = re.compile(
    r"""\s*(?P<verb>\w+)
    (?:\s+(?:OR\s+REPLACE|UNIQUE|TEMPORARY|FULLTEXT|SPATIAL|IGNORE))*
    (?:\s+(?P<object>TABLE|INDEX|VIEW|SEQUENCE|TRIGGER|SCHEMA|DATABASE|TYPE|
    FUNCTION|PROCEDURE|EXTENSION|COLUMN|CONSTRAINT))?""",
    re.IGNORECASE | re.VERBOSE,
)


def is_ddl(statement: str) -> bool:
    """Whether MySQL commits at ``statement`` (a schema change)."""
    return _DDL.match(statement) is not None


def statement_kinds(statements: t.Sequence[str]) -> str:
    """``CREATE TABLE``, ``2 INSERT``: the statements' kinds, counted."""
    counts: dict[str, int] = {}
    for statement in statements:
        match = _KIND.match(statement)
        kind = "statement"
        if match:
            kind = " ".join(p.upper() for p in match.group("verb", "object") if p)
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(
        kind if count == 1 else f"{count} {kind}" for kind, count in counts.items()
    )


def failure_location(error: BaseException, path: str | None) -> str | None:
    """``file, line N`` of the deepest frame of ``error`` in the revision file."""
    if path is None:
        return None
    found = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == path:
            found = frame
    if found is None:
        return None
    line = (linecache.getline(found.filename, found.lineno or 0) or "").strip()
    where = f"{found.filename}, line {found.lineno}"
    return f"{where}: {line}" if line else where
