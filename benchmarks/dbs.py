"""The benchmark's databases: SQLite files, and ``fmxb_*`` databases it creates
on the PostgreSQL and MariaDB servers (and drops at the end).

Servers: ``$FLASK_MIGRATE_EXT_TEST_POSTGRESQL`` (default
``postgresql+psycopg://root@127.0.0.1:5432/test``) and
``$FLASK_MIGRATE_EXT_TEST_MARIADB`` (default
``mysql+pymysql://root@127.0.0.1:3306/test``); the database part of the URL is
replaced by the benchmark's own. Each run names its databases
``fmxb_<6 hex>_<name>``, so runs going on side by side (other checkouts on the
same servers) never touch each other's databases.
"""

from __future__ import annotations

import os
import secrets
import shutil
import typing as t
from pathlib import Path

BACKENDS = ("sqlite", "postgresql", "mariadb")

SERVER_URLS = {
    "postgresql": os.environ.get(
        "FLASK_MIGRATE_EXT_TEST_POSTGRESQL",
        "postgresql+psycopg://root@127.0.0.1:5432/test",
    ),
    "mariadb": os.environ.get(
        "FLASK_MIGRATE_EXT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test"
    ),
}


class Databases:
    """Benchmark databases: SQLite files, or server databases we create."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = f"fmxb_{secrets.token_hex(3)}_"
        self._admin: dict[str, t.Any] = {}
        self.created: list[tuple[str, str]] = []

    def admin(self, backend: str) -> t.Any:
        if backend not in self._admin:
            import sqlalchemy as sa

            self._admin[backend] = sa.create_engine(
                SERVER_URLS[backend], isolation_level="AUTOCOMMIT"
            )
        return self._admin[backend]

    def url(self, backend: str, name: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{self.root / 'db' / (name + '.db')}"
        import sqlalchemy as sa

        url = sa.make_url(SERVER_URLS[backend]).set(database=self.prefix + name)
        return url.render_as_string(hide_password=False)

    def execute(self, backend: str, *statements: str) -> None:
        """Run ``statements`` on the server, outside any database of ours."""
        with self.admin(backend).connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)

    def execute_in(self, backend: str, name: str, *statements: str) -> None:
        """Run ``statements`` in our database ``name``, in one transaction."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(backend, name))
        try:
            with engine.begin() as conn:
                for statement in statements:
                    conn.exec_driver_sql(statement)
        finally:
            engine.dispose()

    def drop_tables(self, backend: str, name: str, prefix: str) -> list[str]:
        """Drop the tables of database ``name`` whose names start with ``prefix``."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(backend, name))
        try:
            with engine.begin() as conn:
                tables = [
                    table
                    for table in sa.inspect(conn).get_table_names()
                    if table.startswith(prefix)
                ]
                quote = conn.dialect.identifier_preparer.quote
                for table in tables:
                    conn.exec_driver_sql(f"DROP TABLE {quote(table)}")
        finally:
            engine.dispose()
        return tables

    def create(self, backend: str, name: str, template: str | None = None) -> str:
        """Create (or recreate) an empty database, or a copy of ``template``."""
        url = self.url(backend, name)
        if backend == "sqlite":
            path = self.root / "db" / (name + ".db")
            path.parent.mkdir(exist_ok=True)
            path.unlink(missing_ok=True)
            if template is not None:
                shutil.copyfile(self.root / "db" / (template + ".db"), path)
            return url
        db = self.prefix + name
        if (backend, db) not in self.created:
            self.created.append((backend, db))
        if backend == "postgresql":
            create = f"CREATE DATABASE {db}"
            if template is not None:
                create += f" TEMPLATE {self.prefix}{template}"
            self.execute(backend, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", create)
            return url
        self.execute(backend, f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db}")
        if template is not None:
            self._copy_mariadb(self.prefix + template, db)
        return url

    def _copy_mariadb(self, source: str, target: str) -> None:
        """MariaDB has no database templates: copy each table, rows included."""
        import sqlalchemy as sa

        with self.admin("mariadb").connect() as conn:
            tables = conn.exec_driver_sql(
                "SELECT table_name FROM information_schema.tables"
                f" WHERE table_schema = '{source}' AND table_type = 'BASE TABLE'"
            ).scalars()
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            # SHOW CREATE TABLE names referenced tables without a database:
            # they resolve in the current one.
            conn.exec_driver_sql(f"USE {target}")
            try:
                for table in list(tables):
                    ddl = conn.exec_driver_sql(
                        f"SHOW CREATE TABLE `{source}`.`{table}`"
                    ).one()[1]
                    conn.exec_driver_sql(ddl)
                    conn.exec_driver_sql(
                        f"INSERT INTO `{target}`.`{table}`"
                        f" SELECT * FROM `{source}`.`{table}`"
                    )
            finally:
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")
                # Back to the URL's database for the pooled connection.
                home = sa.make_url(SERVER_URLS["mariadb"]).database
                conn.exec_driver_sql(f"USE {home or 'information_schema'}")

    def drop_all(self) -> None:
        for backend, db in self.created:
            force = " WITH (FORCE)" if backend == "postgresql" else ""
            self.execute(backend, f"DROP DATABASE IF EXISTS {db}{force}")
        for engine in self._admin.values():
            engine.dispose()
