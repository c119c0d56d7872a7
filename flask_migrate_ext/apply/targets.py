"""What a command over several targets (binds, tenant schemas) did on each.

A *target* is one run of env.py: one tenant schema, one bind, or every
database of an env.py that cannot choose among them. The results cross
process boundaries (``--jobs``), so they hold plain data only: picklable
dataclasses, the error as its message and exit code.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ..errors import ExitCode

if t.TYPE_CHECKING:
    from .results import Step

#: ``"done"``: the target ran to its end (see :attr:`TargetResult.steps`
#: for whether it changed anything); ``"failed"``; ``"interrupted"``: stopped
#: by Ctrl-C or SIGTERM while it ran; ``"skipped"``: never started, as an
#: earlier target failed or the command was stopped.
TargetStatus = t.Literal["done", "failed", "interrupted", "skipped"]


@dataclasses.dataclass
class TargetResult:
    """What happened on one target.

    .. versionadded:: 0.1
    """

    #: How output names it: ``<default>``, a bind's name, ``schema NAME``.
    label: str
    #: The bind it ran on; ``None`` for every database of the app (an
    #: env.py that cannot choose) or the only one.
    bind: str | None = None
    #: The tenant schema it ran in, or ``None``.
    schema: str | None = None
    status: TargetStatus = "done"
    #: The version table before and after (``None``: not read, or unreadable).
    before: tuple[str, ...] | None = None
    after: tuple[str, ...] | None = None
    #: The revisions applied, reverted or stamped (empty for ``current`` and
    #: ``check``, and for a target that failed: see :attr:`after`).
    steps: list[Step] = dataclasses.field(default_factory=list)
    #: Seconds the target ran.
    seconds: float = 0.0
    #: The error's message (all its lines), when it failed or was interrupted.
    error: str | None = None
    #: The exit code of this target alone (:class:`~flask_migrate_ext.ExitCode`).
    exit_code: int = ExitCode.OK
    #: The error's traceback, for ``flask db --verbose``.
    traceback: str | None = None
    #: Run in a worker process (``jobs`` above 1): what it printed there,
    #: shown with its result. Empty when run in this process (printed as
    #: it happened).
    log: str = ""

    @property
    def ok(self) -> bool:
        """The target ran to its end."""
        return self.status == "done"
