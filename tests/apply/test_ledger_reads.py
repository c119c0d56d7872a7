"""The ledger's reads before each run cost the same however long its history:
the checks read only unsettled rows, and which revisions it believes applied
is worked out by the database, with the same answer as reading every row."""

from __future__ import annotations

import random
import typing as t

import pytest
import sqlalchemy as sa

from flask_migrate_ext.apply.ledger import Ledger
from flask_migrate_ext.apply.ledger_checks import needing_attention
from flask_migrate_ext.apply.ledger_rows import applied_rows
from flask_migrate_ext.apply.ledger_rows import ledger_table
from flask_migrate_ext.apply.ledger_rows import utcnow

BACKENDS = ["sqlite", "postgresql", "mariadb"]

#: Every (action, status) a row can have, settled or not.
KINDS = [
    ("upgrade", "applied"),
    ("upgrade", "failed"),
    ("upgrade", "interrupted"),
    ("downgrade", "applied"),
    ("downgrade", "failed"),
    ("stamp", "stamped"),
    ("stamp", "unstamped"),
    ("baseline", "applied"),
    ("accept", "applied"),
    ("upgrade", "resolved"),
    ("upgrade", "crashed"),
]


def _ledger(url: str) -> tuple[sa.Engine, Ledger]:
    engine = sa.create_engine(url)
    ledger = Ledger(ledger_table())
    with engine.begin() as connection:
        ledger.ensure(connection)
    return engine, ledger


def _write(
    connection: sa.Connection, ledger: Ledger, revision: str, action: str, **row: t.Any
) -> None:
    values = {
        "revision": revision,
        "action": action,
        "status": "applied",
        "partial": False,
        "statements": 1,
        "started_at": utcnow(),
        "finished_at": utcnow(),
        "host": "elsewhere",
        "pid": 1,
        **row,
    }
    connection.execute(ledger.table.insert(), values)


@pytest.mark.parametrize("backend", BACKENDS)
def test_recorded_revisions_match_reading_every_row(
    make_database: t.Callable[[str], str], backend: str
) -> None:
    engine, ledger = _ledger(make_database(backend))
    chance = random.Random(20)
    try:
        with engine.begin() as connection:
            for _ in range(400):
                action, status = chance.choice(KINDS)
                revision = f"r{chance.randrange(25)}"
                _write(connection, ledger, revision, action, status=status)
        with engine.connect() as connection:
            expected = set(applied_rows(ledger.entries(connection)))
            assert expected  # the random history leaves some applied
            assert ledger.recorded_revisions(connection) == expected
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_checks_before_a_run_read_only_unsettled_rows(
    make_database: t.Callable[[str], str], backend: str
) -> None:
    """Hundreds of settled rows (applied, failed with nothing left behind,
    resolved) are not read; a running row and a partial failure are."""
    engine, ledger = _ledger(make_database(backend))
    try:
        with engine.begin() as connection:
            for number in range(300):
                _write(connection, ledger, f"r{number}", "upgrade")
            _write(connection, ledger, "r5", "upgrade", status="failed")
            _write(connection, ledger, "r6", "upgrade", status="resolved", partial=True)
            _write(connection, ledger, "r7", "upgrade", status="failed", partial=True)
            _write(
                connection,
                ledger,
                "r8",
                "downgrade",
                status="interrupted",
                partial=True,
            )
            _write(connection, ledger, "r9", "upgrade", status="running")
        with engine.connect() as connection:
            unsettled = ledger.entries(connection, unsettled=True)
            assert [(e.revision, e.status) for e in unsettled] == [
                ("r7", "failed"),
                ("r8", "interrupted"),
                ("r9", "running"),
            ]
            # What the checks conclude from them is what all rows would say.
            everything = ledger.entries(connection)
            assert [e for e in everything if e.needs_attention] == [
                e for e in unsettled if e.needs_attention
            ]
            # r9's process is elsewhere and no lock says it is alive: cut
            # off, and where DDL is not transactional maybe partial.
            attention = needing_attention(ledger, connection, probe=None)
            cut_off = ["r9"] if backend == "mariadb" else []
            assert [e.revision for e in attention] == ["r7", "r8", *cut_off]
    finally:
        engine.dispose()
