"""What a run returns: the steps it applied. Apart from the runner, so that
answers given without Alembic (:mod:`.noop`) return the same objects."""

from __future__ import annotations

import dataclasses
import typing as t

from .targets import TargetResult

Action = t.Literal["upgrade", "downgrade", "stamp"]


@dataclasses.dataclass(frozen=True)
class Step:
    """One revision step that was applied to the database."""

    #: ``"upgrade"``, ``"downgrade"`` or ``"stamp"``.
    action: Action
    #: The revision whose script ran (for a stamp, the revision stamped to or from).
    revision: str | None
    #: Version table contents the step started from.
    source: tuple[str, ...]
    #: Version table contents the step ended at.
    destination: tuple[str, ...]
    #: First line of the revision's docstring.
    message: str | None
    #: The tenant schema it ran in (``--schema``), if any.
    schema: str | None = None
    #: The database it ran on: a bind name, ``""`` for the default database
    #: (and in ``--sql`` mode, which connects to none).
    #:
    #: .. versionadded:: 0.1
    database: str = ""


@dataclasses.dataclass
class RunResult:
    """What a run did. ``steps`` is empty when there was nothing to do."""

    steps: list[Step] = dataclasses.field(default_factory=list)
    #: Version table contents when the run started (``None`` in ``--sql`` mode).
    initial: tuple[str, ...] | None = None
    #: What happened on each target (bind, tenant schema) of the command, in
    #: the order given; one entry when there was one.
    #:
    #: .. versionadded:: 0.1
    targets: list[TargetResult] = dataclasses.field(default_factory=list, compare=False)
