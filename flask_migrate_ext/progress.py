"""Progress events of ``upgrade`` and ``downgrade``: which revision of how many,
on which database, for how long.

The runner emits them (and a command over several targets, when they start
and as each ends); nobody listens unless a listener is installed, so the
Python API stays silent and a run pays one context-variable read per target
for the feature. The CLI installs a display (a line updated in place on a
terminal, one line per revision otherwise); an app may install its own::

    from flask_migrate_ext import api, progress

    def log_progress(event: progress.ProgressEvent) -> None:
        if isinstance(event, progress.RevisionFinished):
            app.logger.info("%s/%s %s", event.index, event.total, event.revision)

    api.upgrade(progress=log_progress)

Events are frozen dataclasses holding strings and numbers only, so they
pickle: with ``jobs`` above 1, the worker processes send theirs to the
process that called the command, where the listener is called.
Times come from :func:`time.monotonic`.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import typing as t


@dataclasses.dataclass(frozen=True)
class RunStarted:
    """Revisions are about to run on one target (a database, or a tenant
    schema in it). A command with several targets starts one run per target."""

    #: ``"upgrade"`` or ``"downgrade"``.
    action: str
    #: The target: the bind name, ``"default"`` for the default database, or
    #: the tenant schema.
    target: str
    #: The command works on more than one target: name it when displaying.
    several: bool
    #: Revisions this run will apply (0 when there is nothing to do).
    total: int


@dataclasses.dataclass(frozen=True)
class RevisionStarted:
    """A revision starts, in its transaction."""

    action: str
    target: str
    several: bool
    #: Its position in the run, from 1 to ``total``.
    index: int
    total: int
    #: The revision whose script runs.
    revision: str
    #: The version table before and after it (``()`` is base); for a merge
    #: or a branch point, several revisions.
    source: tuple[str, ...]
    destination: tuple[str, ...]
    #: The first line of its docstring.
    message: str | None
    #: When it started, by :func:`time.monotonic`.
    started: float


@dataclasses.dataclass(frozen=True)
class RevisionFinished:
    """A revision ran (and, with a transaction per revision, committed)."""

    action: str
    target: str
    several: bool
    index: int
    total: int
    revision: str
    source: tuple[str, ...]
    destination: tuple[str, ...]
    message: str | None
    #: How long it took, in seconds.
    seconds: float


@dataclasses.dataclass(frozen=True)
class RunFinished:
    """The run on one target ended: completed, or stopped by an error or an
    interrupt (no :class:`RevisionFinished` for the revision that failed)."""

    action: str
    target: str
    several: bool
    #: Revisions that ran to the end.
    done: int
    total: int
    seconds: float
    completed: bool


@dataclasses.dataclass(frozen=True)
class TargetsStarted:
    """A command starts over several targets (tenant schemas; binds), each
    with runs of its own (see "Many targets at once" in the docs).

    .. versionadded:: 0.1
    """

    #: How many targets the command works on.
    total: int
    #: How many run at once (``jobs``).
    jobs: int


@dataclasses.dataclass(frozen=True)
class TargetFinished:
    """One of several targets ended: done, failed, interrupted, or skipped
    (never started). Every target of a :class:`TargetsStarted` ends once.

    .. versionadded:: 0.1
    """

    #: The target as its runs name it (the tenant schema, the bind name).
    target: str
    #: ``"done"``, ``"failed"``, ``"interrupted"`` or ``"skipped"``.
    status: str
    #: Targets ended so far, this one included, of ``total``.
    done: int
    total: int


ProgressEvent = (
    RunStarted
    | RevisionStarted
    | RevisionFinished
    | RunFinished
    | TargetsStarted
    | TargetFinished
)
#: Called with each event, in the thread running the migration; with
#: ``jobs`` above 1, in the process that called the command, as the workers'
#: events arrive. An exception it raises stops the run, as an error in a
#: revision would (with ``jobs``: no new target starts, and the exception is
#: raised once the running ones have finished).
Listener = t.Callable[[ProgressEvent], None]

_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar(
    "flask_migrate_ext_progress", default=None
)


def current_listener() -> Listener | None:
    """The listener installed by :func:`listening`, if any."""
    return _listener.get()


@contextlib.contextmanager
def listening(listener: Listener | None) -> t.Iterator[None]:
    """Send the progress events of runs inside the block to ``listener``
    (``None``: to nobody, whatever an outer block installed)."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def revision_range(source: t.Sequence[str], destination: t.Sequence[str]) -> str:
    """``a1b2c3 -> d4e5f6``, as Alembic's log line has it (``base`` for none)."""
    return f"{', '.join(source) or 'base'} -> {', '.join(destination) or 'base'}"


def duration(seconds: float) -> str:
    """``0.03 s``, ``12.4 s``, ``2 min 05 s``."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s"
