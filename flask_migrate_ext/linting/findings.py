"""What the lint found: frozen dataclasses, no text.

``flask db lint`` and ``flask db migrate`` render these; the Python API
returns them (:func:`flask_migrate_ext.api.lint`).
"""

from __future__ import annotations

import dataclasses
import typing as t

Severity = t.Literal["error", "warning"]

#: The page documenting every rule; a rule's section is ``#`` + its code, lower case.
DOCS_PAGE = "lint"


@dataclasses.dataclass(frozen=True)
class LintFinding:
    """One operation of one revision that a rule flags.

    .. versionadded:: 0.1
    """

    #: The rule's code, ``FMX001`` ...
    code: str
    #: ``"error"`` (fails ``flask db lint``) or ``"warning"`` (fails it with
    #: ``--strict``).
    severity: Severity
    #: The rule's one-line title.
    title: str
    #: The revision id.
    revision: str
    #: The revision file.
    path: str
    #: The line of the operation in the file (``None``: not found).
    line: int | None
    #: What the operation does wrong, naming it.
    message: str
    #: What to do instead.
    hint: str
    #: The database (bind name) of a multiple-database script; ``None`` for
    #: a single-database one.
    database: str | None = None

    @property
    def anchor(self) -> str:
        """The section of the docs' lint page about this rule."""
        return self.code.lower()

    def line_text(self) -> str:
        """The finding on one line, as ``flask db migrate`` prints it."""
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.code} {self.severity}: {self.message}{where}. {self.hint}"


@dataclasses.dataclass(frozen=True)
class LintResult:
    """What :func:`~flask_migrate_ext.api.lint` found in the revisions it read.

    .. versionadded:: 0.1
    """

    #: The revisions read, oldest first.
    revisions: tuple[str, ...]
    #: The findings not suppressed in the scripts, by revision then line.
    findings: tuple[LintFinding, ...] = ()
    #: The findings a ``# fmx: allow`` comment suppressed.
    suppressed: tuple[LintFinding, ...] = ()
    #: Whether warnings count as failures.
    strict: bool = False

    @property
    def errors(self) -> tuple[LintFinding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[LintFinding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def failed(self) -> bool:
        """Errors found, or with :attr:`strict` warnings too."""
        return bool(self.errors or (self.strict and self.warnings))
