"""Emit the progress events of one run on one target (see :mod:`..progress`).

The runner makes a :class:`RunProgress` per database (and tenant schema) only
when a listener is installed, and calls it as each revision starts and ends;
with nobody listening it makes none, so a revision costs one ``is None`` test.
"""

from __future__ import annotations

import time
import typing as t

from ..databases.tenants import current_schema
from ..progress import current_listener
from ..progress import Listener
from ..progress import RevisionFinished
from ..progress import RevisionStarted
from ..progress import RunFinished
from ..progress import RunStarted

if t.TYPE_CHECKING:
    from alembic.runtime.migration import MigrationStep

    from .tracking import StepTracker


def run_progress(
    action: str,
    steps: t.Sequence[MigrationStep],
    tracker: StepTracker | None,
    databases: int,
) -> RunProgress | None:
    """The progress of a run of ``steps`` on ``tracker``'s database, if anyone
    listens; ``None`` in ``--sql`` mode (no tracker) and for a stamp.

    :param databases: How many databases the command works on.
    """
    listener = current_listener()
    if listener is None or tracker is None or action == "stamp":
        return None
    schema = current_schema()
    target = schema or tracker.database or "default"
    several = databases > 1 or schema is not None
    return RunProgress(listener, action, target, several, steps)


class RunProgress:
    """Tells the listener where one run stands."""

    def __init__(
        self,
        listener: Listener,
        action: str,
        target: str,
        several: bool,
        steps: t.Sequence[MigrationStep],
    ) -> None:
        self._listener = listener
        self._steps = steps
        self._action = action
        self._target = target
        self._several = several
        self._began = time.monotonic()
        self._current: RevisionStarted | None = None
        self._done = 0
        self._ended = False
        listener(RunStarted(action, target, several, len(steps)))
        if not steps:
            self._end(completed=True)

    def started(self, index: int) -> None:
        """The ``index``-th step (from 1) starts."""
        step = self._steps[index - 1]
        script = step.revision  # type: ignore[attr-defined]
        self._current = RevisionStarted(
            action=self._action,
            target=self._target,
            several=self._several,
            index=index,
            total=len(self._steps),
            revision=script.revision,
            source=tuple(step.from_revisions_no_deps),
            destination=tuple(step.to_revisions_no_deps),
            message=script.doc or None,
            started=time.monotonic(),
        )
        self._listener(self._current)

    def finished(self) -> None:
        """The step started last has run; the run ends with its last one."""
        current = self._current
        if current is None:
            return
        self._current = None
        self._done += 1
        self._listener(
            RevisionFinished(
                action=current.action,
                target=current.target,
                several=current.several,
                index=current.index,
                total=current.total,
                revision=current.revision,
                source=current.source,
                destination=current.destination,
                message=current.message,
                seconds=time.monotonic() - current.started,
            )
        )
        if self._done == len(self._steps):
            self._end(completed=True)

    def close(self) -> None:
        """The run is over: if it did not get to its end, it was stopped."""
        if not self._ended:
            self._end(completed=False)

    def _end(self, completed: bool) -> None:
        self._ended = True
        self._listener(
            RunFinished(
                action=self._action,
                target=self._target,
                several=self._several,
                done=self._done,
                total=len(self._steps),
                seconds=time.monotonic() - self._began,
                completed=completed,
            )
        )
