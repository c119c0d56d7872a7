"""Lint one revision script: record its upgrade, judge the operations, and
keep apart what its ``# fmx: allow`` comments suppress."""

from __future__ import annotations

import dataclasses
import inspect
import typing as t

from .. import errors
from ..scripts.recorder import dialect_of
from ..scripts.recorder import record
from ..scripts.recorder import Recording
from ..state import database_names
from ..state import get_engine
from ..state import get_state
from . import rules
from .comments import Allowances
from .findings import LintFinding
from .findings import LintResult

if t.TYPE_CHECKING:
    from alembic.script import Script

#: The dialects ``dialect=`` / ``--dialect`` accepts.
DIALECTS = ("mariadb", "mssql", "mysql", "oracle", "postgresql", "sqlite")


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
        p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in parameters
    )


def recordings(
    upgrade: t.Callable[..., t.Any], path: str, databases: t.Sequence[Database]
) -> list[tuple[str | None, Recording]]:
    """Record ``upgrade`` once, or once per database for a multiple-database
    script (named ``None`` for a single-database one)."""
    if _takes_database_name(upgrade):
        return [
            (db.name, record(upgrade, path, db.dialect, (db.name,))) for db in databases
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


def lint_scripts(
    scripts: t.Sequence[Script], databases: t.Sequence[Database], strict: bool = False
) -> LintResult:
    """Lint ``scripts`` (oldest first) for ``databases``."""
    findings: list[LintFinding] = []
    suppressed: list[LintFinding] = []
    for sc in scripts:
        with open(sc.path, encoding="utf-8") as f:
            source = f.read()
        upgrade = getattr(sc.module, "upgrade", None) or _no_upgrade
        found = lint_script(sc.revision, sc.path, source, upgrade, databases)
        findings.extend(sorted(found.findings, key=_by_line))
        suppressed.extend(sorted(found.suppressed, key=_by_line))
    return LintResult(
        revisions=tuple(sc.revision for sc in scripts),
        findings=tuple(findings),
        suppressed=tuple(suppressed),
        strict=strict,
    )


def _no_upgrade() -> None:
    raise AttributeError("the script defines no upgrade()")


def _by_line(finding: LintFinding) -> tuple[int, str]:
    return (finding.line or 0, finding.code)


def databases(dialect: str | None = None) -> list[Database]:
    """The databases scripts migrate and their dialects, the default first."""
    if dialect is not None:
        if dialect not in DIALECTS:
            raise errors.CommandFailedError(
                f"Unknown dialect {dialect!r}: use one of {', '.join(DIALECTS)}."
            )
        names = _names_if_configured() or [""]
        return [Database(name, dialect) for name in names]
    state = get_state()
    if state.db is None:
        raise errors.NotInitializedError(
            "Migrate was not given a database, so the dialect to lint for is"
            " unknown: pass --dialect (dialect=...)."
        )
    return [
        Database(name, dialect_of(get_engine(state, name).url))
        for name in database_names()
    ]


def _names_if_configured() -> list[str]:
    state = get_state()
    return database_names() if state.db is not None else []
