"""Server-side limits for each revision's statements, set in its own
transaction (PostgreSQL ``SET LOCAL``) or per session (MySQL, MariaDB)."""

from __future__ import annotations

import dataclasses
import typing as t

import sqlalchemy as sa


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """Server-side limits for the statements of each revision (seconds).

    ``lock`` bounds how long a statement waits for a table lock, so a
    migration queued behind a long transaction fails instead of stalling
    every query on that table; ``statement`` bounds each statement.
    """

    lock: float | None = None
    statement: float | None = None
    #: Tries after a lock timeout, when nothing of the revision stayed.
    retries: int = 0

    def sets_any(self) -> bool:
        """Whether :meth:`apply` sends anything on PostgreSQL."""
        return self.lock is not None or self.statement is not None

    def postgresql_settings(
        self, also: t.Sequence[tuple[str, str]] = ()
    ) -> list[tuple[str, str]]:
        """``(name, value)`` of the settings for a revision's transaction on
        PostgreSQL: ``also``, then the limits (ms)."""
        settings = list(also)
        for name, limit in (
            ("lock_timeout", self.lock),
            ("statement_timeout", self.statement),
        ):
            if limit is not None:
                settings.append((name, str(int(limit * 1000))))
        return settings

    def apply(self, connection: sa.Connection, *also: tuple[str, str]) -> None:
        """Set the limits for the step's transaction on ``connection``.

        :param also: More ``SET LOCAL`` settings (``(name, value)``) for the
            same transaction on PostgreSQL, sent with the limits in one round
            trip.
        """
        dialect = connection.dialect.name
        if dialect == "postgresql":
            # SET LOCAL ends with the transaction: the app's pooled
            # connections never keep it.
            settings = self.postgresql_settings(also)
            if settings:
                connection.exec_driver_sql(
                    "; ".join(f"SET LOCAL {name} = {value}" for name, value in settings)
                )
        elif dialect in ("mysql", "mariadb"):
            # Each revision, in one statement: a revision may change them.
            assignments = []
            if self.lock is not None:
                seconds = max(1, int(self.lock))
                assignments.append(f"SESSION lock_wait_timeout = {seconds}")
                assignments.append(f"SESSION innodb_lock_wait_timeout = {seconds}")
            if self.statement is not None and connection.dialect.is_mariadb:  # type: ignore[attr-defined]
                assignments.append(
                    f"SESSION max_statement_time = {float(self.statement)}"
                )
            if assignments:
                connection.exec_driver_sql(f"SET {', '.join(assignments)}")
