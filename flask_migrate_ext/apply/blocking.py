"""A revision gave up waiting for a table lock: who held it, and when to try again.

The server-side lock timeout (:class:`~.tracking.Timeouts`) keeps a
migration queued behind a long transaction from stalling every query on
that table. When it fires, the runner runs the revision again after a short
wait (see :func:`flask_migrate_ext.apply.runner.run`), and names the
sessions that held the table when it gives up.
"""

from __future__ import annotations

import datetime
import random
import re
import typing as t

import sqlalchemy as sa

from ..errors import first_line
from ..errors import short_statement

#: PostgreSQL's ``lock_not_available``; MySQL's "Lock wait timeout exceeded".
_PG_LOCK_TIMEOUT = "55P03"
_MYSQL_LOCK_TIMEOUT = 1205

#: Sessions named in a message, at most.
SHOWN = 3

_TABLE = re.compile(
    r"""\s*(?:
        ALTER\s+TABLE(?:\s+IF\s+EXISTS)?(?:\s+ONLY)?
      | DROP\s+TABLE(?:\s+IF\s+EXISTS)?
      | (?:CREATE|DROP)\s+(?:UNIQUE\s+)?INDEX\b.*?\bON(?:\s+ONLY)?
      | TRUNCATE(?:\s+TABLE)?
      | LOCK\s+TABLES?
      | RENAME\s+TABLE
      | INSERT\s+(?:IGNORE\s+)?INTO
      | UPDATE
      | DELETE\s+FROM
    )\s+(?P<name>(?:[`"]?[\w$]+[`"]?\.)?[`"]?[\w$]+[`"]?)""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)


def is_lock_timeout(error: BaseException) -> bool:
    """Whether ``error`` is the server's lock timeout (not a deadlock, not
    a statement timeout)."""
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    orig = error.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code == _PG_LOCK_TIMEOUT:
        return True
    args: t.Sequence[t.Any] = getattr(orig, "args", ())
    return bool(args) and args[0] == _MYSQL_LOCK_TIMEOUT


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: 1, 2, 4... (at most
    30), give or take a quarter, so several processes do not retry in step."""
    base = min(2.0 ** (attempt - 1), 30.0)
    return round(base * random.uniform(0.75, 1.25), 1)


def table_of(statement: object) -> str | None:
    """The table a statement locks, as written in it (quotes kept)."""
    match = _TABLE.match(str(statement or ""))
    return match["name"] if match else None


def blockers(engine: sa.Engine, statement: object) -> list[str]:
    """The sessions holding the table ``statement`` waited for, described
    in a few words each; the oldest open transactions when the table is not
    known or not the reason. Empty if they cannot be read."""
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                return _postgresql(connection, table_of(statement))
            if connection.dialect.name in ("mysql", "mariadb"):
                return _mysql(connection)
    except sa.exc.SQLAlchemyError:
        pass
    return []


_PG_SESSIONS = """
SELECT a.pid, a.application_name, a.client_addr::text, a.state, a.xact_start,
       a.query
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
  AND a.xact_start IS NOT NULL AND a.backend_type = 'client backend'
  AND (CAST(:table AS text) IS NULL OR a.pid IN (
      SELECT l.pid FROM pg_locks l
      WHERE l.granted AND l.relation = to_regclass(CAST(:table AS text))))
ORDER BY a.xact_start
LIMIT :limit
"""


def _postgresql(connection: sa.Connection, table: str | None) -> list[str]:
    rows = connection.execute(
        sa.text(_PG_SESSIONS), {"table": table, "limit": SHOWN}
    ).all()
    if not rows and table is not None:
        return _postgresql(connection, None)
    found = []
    for pid, app, client, state, since, query in rows:
        parts = [app] if app else []
        parts.append(client.split("/")[0] if client else "local")
        parts.append(f"{state or 'active'} since {_clock(since)}")
        text = f"pid {pid} ({', '.join(parts)}"
        if query:
            text += f": {short_statement(first_line(query), 80)}"
        found.append(text + ")")
    return found


_MYSQL_SESSIONS = """
SELECT p.ID, p.USER, p.HOST, p.COMMAND, p.TIME, p.INFO, t.trx_started
FROM information_schema.INNODB_TRX t
JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
WHERE p.ID <> CONNECTION_ID() AND (p.DB = DATABASE() OR p.DB IS NULL)
ORDER BY t.trx_started
LIMIT :limit
"""


def _mysql(connection: sa.Connection) -> list[str]:
    rows = connection.execute(sa.text(_MYSQL_SESSIONS), {"limit": SHOWN}).all()
    found = []
    for session, user, host, command, _time, info, since in rows:
        state = "idle" if command == "Sleep" else str(command).lower()
        text = f"id {session} ({user}@{host}, {state} in a transaction since"
        text += f" {_clock(since)}"
        if info:
            text += f": {short_statement(first_line(info), 80)}"
        found.append(text + ")")
    return found


def _clock(moment: datetime.datetime | None) -> str:
    """``12:00:01``, in this machine's time zone when the server said which."""
    if moment is None:
        return "?"
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return f"{moment:%H:%M:%S}"


def describe(found: t.Sequence[str]) -> str:
    """``a lock held by pid 1 (...)`` / ``... held by pid 1 (...) or pid 2 (...)``."""
    if not found:
        return "a lock (its holder could not be read)"
    return "a lock held by " + " or ".join(found)
