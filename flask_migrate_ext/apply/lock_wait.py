"""Waiting for a migration lock, and saying who holds it or that it was lost:
what every kind of lock (:mod:`.lock`, :mod:`.table_lock`) shares."""

from __future__ import annotations

import dataclasses
import time
import typing as t

import sqlalchemy as sa

from ..databases.urls import masked
from ..errors import LockLostError
from ..errors import LockTimeoutError
from ..report import report

#: How often a waiting process asks again.
POLL_INTERVAL = 0.25


@dataclasses.dataclass(frozen=True)
class LockTarget:
    """One database to lock: its name in the app (``""`` is the default one).

    ``engine`` is a synchronous engine for the lock, the ledger and
    cancelling statements; ``app_engine`` is the app's own, which may be an
    ``AsyncEngine``.
    """

    name: str
    engine: sa.Engine
    version_table: str = "alembic_version"
    app_engine: t.Any = None
    #: The tenant schema the run works in: each schema is locked on its own.
    schema: str | None = None

    @property
    def lock_name(self) -> str:
        """What the lock is named after: the version table, in its schema."""
        if self.schema is None:
            return self.version_table
        return f"{self.schema}.{self.version_table}"

    def serves(self, engine: sa.Engine) -> bool:
        """Whether ``engine`` (a migration connection's) is this database's."""
        app_engine = self.app_engine if self.app_engine is not None else self.engine
        return engine is app_engine or engine is getattr(app_engine, "sync_engine", 0)


class Held(t.Protocol):
    """One database's lock while it is held."""

    #: Longest pause between two calls of :meth:`beat`.
    interval: float

    def check(self) -> None:
        """Raise :class:`LockLostError` unless the lock is still ours."""

    def beat(self) -> None:
        """Keep the lock alive (a ping, a lease renewal); never raises."""


def label(target: LockTarget) -> str:
    url = masked(
        target.app_engine.url if target.app_engine is not None else target.engine.url
    )
    return f"{target.name} ({url})" if target.name else url


def lost(target: LockTarget, why: str, command: str) -> LockLostError:
    return LockLostError(
        f"Lost the migration lock on {label(target)}: {why}. Another process"
        f" may have taken it and started migrating: check 'flask {command}"
        " current' and the ledger before running it again."
    )


def wait(
    target: LockTarget,
    timeout: float,
    try_acquire: t.Callable[[], bool],
    describe_holder: t.Callable[[], str | None],
) -> None:
    """Poll ``try_acquire`` until it succeeds or ``timeout`` seconds pass."""
    if try_acquire():
        return
    holder = describe_holder()
    held_by = f", held by {holder}" if holder else ""
    report(
        f"Waiting for the migration lock on {label(target)}{held_by}"
        f" (up to {timeout:g} s)..."
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(min(POLL_INTERVAL, max(deadline - time.monotonic(), 0)))
        if try_acquire():
            report(f"Got the migration lock on {label(target)}.")
            return
    holder = describe_holder() or holder
    held_by = f" is held by {holder}" if holder else " is held by another process"
    raise LockTimeoutError(
        f"Gave up after {timeout:g} s: the migration lock on {label(target)}"
        f"{held_by}. Try again later, or raise --lock-timeout."
    )
