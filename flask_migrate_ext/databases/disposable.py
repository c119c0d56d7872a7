"""Disposable databases for testing migrations, and a cheap outline of a schema.

``flask db test`` runs every revision up and down on a database made for the
run and dropped after it: a SQLite file in a temporary folder by default, or
a database created for the run on the PostgreSQL or MariaDB server a URL
names. Nothing here imports Alembic.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import typing as t

import sqlalchemy as sa

from ..errors import DatabaseUnreachableError
from ..errors import MigrateError
from .urls import masked

#: Tables and their columns, as ``(table, column)`` pairs.
Outline = frozenset[tuple[str, str]]

#: Prefix of the databases created on a server; a leftover one is easy to spot.
PREFIX = "fmx_test_"


class DisposableDatabase:
    """An empty database, created when entered and dropped on exit.

    :param url: A server to create the database on (its database part is
        where ``CREATE DATABASE`` runs from); ``None`` for a SQLite file.

    :meth:`renew` swaps it for a new empty one (after a failed revision left
    it in an unknown state).
    """

    def __init__(self, url: str | sa.URL | None = None) -> None:
        self.server_url = sa.make_url(url) if url is not None else None
        if self.server_url is not None and self.server_url.get_backend_name() not in (
            "sqlite",
            "postgresql",
            "mysql",
            "mariadb",
        ):
            raise MigrateError(
                f"Can't make a disposable database on {masked(self.server_url)}:"
                " give a PostgreSQL, MariaDB, MySQL or SQLite URL."
            )
        self._folder: str | None = None
        self._count = 0
        self._engine: sa.Engine | None = None

    @property
    def engine(self) -> sa.Engine:
        """The engine of the current database."""
        if self._engine is None:
            raise RuntimeError("The disposable database is not open.")
        return self._engine

    def __enter__(self) -> DisposableDatabase:
        self.renew()
        return self

    def __exit__(self, *exc: object) -> None:
        self._drop()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def renew(self) -> sa.Engine:
        """Drop the current database, if any, and create a new empty one."""
        self._drop()
        self._count += 1
        if self._is_sqlite():
            self._engine = self._sqlite_engine()
        else:
            self._engine = self._server_engine()
        return self._engine

    def _is_sqlite(self) -> bool:
        return self.server_url is None or self.server_url.get_backend_name() == "sqlite"

    def _sqlite_engine(self) -> sa.Engine:
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="fmx-test-")
        path = os.path.join(self._folder, f"migrations{self._count}.db")
        driver = self.server_url.drivername if self.server_url else "sqlite"
        engine = sa.create_engine(sa.URL.create(driver, database=path))

        # A database thrown away after the run need not survive a power cut.
        @sa.event.listens_for(engine, "connect")
        def _fast(dbapi_connection: t.Any, record: t.Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous = OFF")
            cursor.execute("PRAGMA journal_mode = MEMORY")
            cursor.close()

        return engine

    def _server_engine(self) -> sa.Engine:
        assert self.server_url is not None
        name = f"{PREFIX}{secrets.token_hex(6)}"
        with self._admin() as connection:
            quoted = connection.dialect.identifier_preparer.quote(name)
            connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
        url = self.server_url.set(database=name)
        options: dict[str, t.Any] = {}
        if url.get_backend_name() == "postgresql" and url.get_driver_name() in (
            "psycopg",
            "psycopg2",
        ):
            # A database thrown away after the run need not survive a crash.
            options["connect_args"] = {"options": "-c synchronous_commit=off"}
        return sa.create_engine(url, **options)

    @contextlib.contextmanager
    def _admin(self) -> t.Iterator[sa.Connection]:
        """A connection to the server URL's own database, in autocommit."""
        assert self.server_url is not None
        engine = sa.create_engine(self.server_url, poolclass=sa.NullPool)
        try:
            with engine.connect() as connection:
                yield connection.execution_options(isolation_level="AUTOCOMMIT")
        except sa.exc.OperationalError as e:
            raise DatabaseUnreachableError(
                f"Can't make a disposable database on {masked(self.server_url)}:"
                f" {str(e.orig).strip().splitlines()[0] if e.orig else e}"
            ) from None
        finally:
            engine.dispose()

    def _drop(self) -> None:
        engine, self._engine = self._engine, None
        if engine is None:
            return
        engine.dispose()
        if engine.dialect.name == "sqlite":
            if engine.url.database:
                with contextlib.suppress(OSError):
                    os.remove(engine.url.database)
            return
        name = engine.url.database
        assert name is not None and name.startswith(PREFIX)
        with self._admin() as connection:
            quoted = connection.dialect.identifier_preparer.quote(name)
            force = ""
            version = connection.dialect.server_version_info or (0,)
            if connection.dialect.name == "postgresql" and version >= (13,):
                force = " WITH (FORCE)"  # a connection env.py forgot to close
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}{force}")


_OUTLINE_SQL = {
    "sqlite": "SELECT m.name, p.name FROM sqlite_master AS m"
    " JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table'"
    " AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    "postgresql": "SELECT table_name, column_name FROM information_schema.columns"
    " WHERE table_schema = current_schema()",
    "mysql": "SELECT table_name, column_name FROM information_schema.columns"
    " WHERE table_schema = DATABASE()",
}


def outline(connection: sa.Connection, ignore: t.Container[str] = ()) -> Outline:
    """The tables and columns of the connection's schema, in one query where
    the dialect allows (this runs twice per revision), less ``ignore``."""
    dialect = connection.dialect.name
    query = _OUTLINE_SQL.get("mysql" if dialect == "mariadb" else dialect)
    if query is not None:
        rows = connection.exec_driver_sql(query).all()
        pairs = ((str(table), str(column)) for table, column in rows)
    else:
        inspector = sa.inspect(connection)
        pairs = (
            (table, column["name"])
            for table in inspector.get_table_names()
            for column in inspector.get_columns(table)
        )
    return frozenset(pair for pair in pairs if pair[0] not in ignore)


def tables(found: Outline) -> set[str]:
    """The table names of an outline."""
    return {table for table, _ in found}
