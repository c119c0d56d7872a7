"""Lint one revision script: record its upgrade, judge the operations, and
keep apart what its ``# fmx: allow`` comments suppress."""

from __future__ import annotations

import dataclasses
import inspect
import typing as t

from . import rules
from .comments import Allowances
from .findings import LintFinding
from .recorder import record
from .recorder import Recording


@dataclasses.dataclass(frozen=True)
class Database:
    """A database a script migrates: its bind name (``""``: the default one)
    and its dialect."""

    name: str
    dialect: str


@dataclasses.dataclass
class ScriptFindings:
    """The findings of one script, suppressed ones apart."""

    findings: list[LintFinding] = dataclasses.field(default_factory=list)
    suppressed: list[LintFinding] = dataclasses.field(default_factory=list)


def _takes_database_name(function: t.Callable[..., t.Any]) -> bool:
    """Multiple-database scripts define ``upgrade(engine_name)``."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.default is p.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in parameters
    )


def recordings(
    upgrade: t.Callable[..., t.Any], path: str, databases: t.Sequence[Database]
) -> list[tuple[str | None, Recording]]:
    """Record ``upgrade`` once, or once per database for a multiple-database
    script (named ``None`` for a single-database one)."""
    if _takes_database_name(upgrade):
        return [
            (db.name, record(upgrade, path, db.dialect, (db.name,)))
            for db in databases
        ]
    return [(None, record(upgrade, path, databases[0].dialect))]


def lint_script(
    revision: str,
    path: str,
    source: str,
    upgrade: t.Callable[..., t.Any],
    databases: t.Sequence[Database],
) -> ScriptFindings:
    """The findings for one script's ``upgrade``.

    :param source: The script's text, for its ``# fmx: allow`` comments.
    :param databases: The databases it migrates, the default one first.
    """
    allowances = Allowances.parse(source)
    result = ScriptFindings()
    for database, recording in recordings(upgrade, path, databases):
        found = [
            (r, recorded.line, recorded.end_line, hit)
            for r, recorded, hit in rules.judge(recording)
        ]
        if recording.stopped is not None:
            hit = rules.Hit(
                f"upgrade() stopped before its end ({recording.stopped}); the"
                " operations after it were not checked",
                "Scripts are run without a database: guard code that needs"
                " one, or check this revision by hand.",
            )
            line = recording.stopped_line
            found.append((rules.UNREADABLE, line, line, hit))
        for r, line, end_line, hit in found:
            finding = LintFinding(
                code=r.code,
                severity=r.severity,
                title=r.title,
                revision=revision,
                path=path,
                line=line,
                message=hit.message,
                hint=hit.hint,
                database=database,
            )
            if allowances.allows(r.code, line, end_line):
                result.suppressed.append(finding)
            else:
                result.findings.append(finding)
    return result
