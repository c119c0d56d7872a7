"""pytest plugin: fixtures for testing a Flask app's migrations.

pytest loads this module in every session of every project where the
package is installed (entry point ``pytest11``), so importing it must stay
cheap: Alembic, SQLAlchemy and the app are imported by the fixtures, when a
test asks for them.

The project gives its app with a ``migrate_app`` fixture, or names its app
(or factory) in the ini file::

    [tool.pytest.ini_options]
    flask_migrate_app = "myapp:create_app"

.. versionadded:: 0.2
"""

from __future__ import annotations

import typing as t

import pytest

if t.TYPE_CHECKING:
    import sqlalchemy as sa
    from flask import Flask

    from ..api.checks import MigrationChecks

APP_INI = "flask_migrate_app"
DATABASE_INI = "flask_migrate_database"

_RESULTS = pytest.StashKey[dict[t.Any, "MigrationChecks"]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        APP_INI,
        "The Flask app whose migrations are tested: 'module:app' or"
        " 'module:create_app()' (as flask --app takes it).",
        default=None,
    )
    parser.addini(
        DATABASE_INI,
        "PostgreSQL or MariaDB server to make disposable databases on;"
        " temporary SQLite files by default.",
        default=None,
    )


@pytest.fixture
def migrate_app(request: pytest.FixtureRequest) -> Flask:
    """The app whose migrations are tested: override this fixture, or set
    ``flask_migrate_app`` in the ini file."""
    path = request.config.getini(APP_INI)
    if not path:
        raise pytest.UsageError(
            "Which app's migrations? Define a 'migrate_app' fixture returning"
            f" the app, or set {APP_INI} = 'module:create_app' in the pytest"
            " configuration."
        )
    from flask.cli import ScriptInfo

    return ScriptInfo(app_import_path=str(path)).load_app()


@pytest.fixture
def migrate_database_url(request: pytest.FixtureRequest) -> str | None:
    """The server disposable databases are made on (``None``: SQLite files);
    ``flask_migrate_database`` in the ini file, or override this fixture."""
    value = request.config.getini(DATABASE_INI)
    return str(value) if value else None


@pytest.fixture
def migration_checks(
    request: pytest.FixtureRequest,
    migrate_app: Flask,
    migrate_database_url: str | None,
) -> MigrationChecks:
    """The checks of ``flask db test``, run once per session for each app
    and migration folder (tests then read them)."""
    from ..api.checks import run_migration_checks
    from ..state import get_state

    results = request.config.stash.setdefault(_RESULTS, {})
    with migrate_app.app_context():
        key = (migrate_app.import_name, get_state().directory, migrate_database_url)
        if key not in results:
            results[key] = run_migration_checks(database_url=migrate_database_url)
    return results[key]


class MigrationRunner:
    """Moves a disposable database between revisions and puts data in it:
    for testing a data migration (go to the revision before it, insert rows,
    upgrade, look at the rows)."""

    def __init__(self, engine: sa.Engine) -> None:
        #: The disposable database's engine.
        self.engine = engine

    def upgrade(self, revision: str = "head") -> None:
        """Upgrade to ``revision`` (``head`` by default)."""
        from ..api.checks import migrate_disposable

        migrate_disposable("upgrade", revision)

    def downgrade(self, revision: str = "-1") -> None:
        """Downgrade to ``revision`` (one revision back by default)."""
        from ..api.checks import migrate_disposable

        migrate_disposable("downgrade", revision)

    def current(self) -> tuple[str, ...]:
        """The revisions the database is at."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return tuple(MigrationContext.configure(connection).get_current_heads())

    def execute(
        self,
        statement: str | t.Callable[[sa.Connection], t.Any],
        parameters: t.Mapping[str, t.Any] | None = None,
    ) -> list[t.Any]:
        """Run SQL text (with ``:name`` parameters) or a function given the
        connection, in a transaction; the rows of a query, else ``[]``."""
        import sqlalchemy as sa

        with self.engine.begin() as connection:
            if callable(statement):
                returned = statement(connection)
                return list(returned) if returned is not None else []
            found = connection.execute(sa.text(statement), dict(parameters or {}))
            return [tuple(row) for row in found] if found.returns_rows else []

    def insert(self, table: str, rows: t.Iterable[t.Mapping[str, t.Any]]) -> None:
        """Insert ``rows`` (column to value) into ``table`` as it is now."""
        import sqlalchemy as sa

        rows = [dict(row) for row in rows]
        if not rows:
            return
        with self.engine.begin() as connection:
            reflected = sa.Table(table, sa.MetaData(), autoload_with=connection)
            for row in rows:  # rows may name different columns
                connection.execute(reflected.insert().values(row))

    def rows(self, table: str) -> list[dict[str, t.Any]]:
        """Every row of ``table``, as column to value."""
        import sqlalchemy as sa

        with self.engine.connect() as connection:
            reflected = sa.Table(table, sa.MetaData(), autoload_with=connection)
            found = connection.execute(sa.select(reflected))
            return [dict(row._mapping) for row in found]


@pytest.fixture
def migration_runner(
    migrate_app: Flask, migrate_database_url: str | None
) -> t.Iterator[MigrationRunner]:
    """A :class:`MigrationRunner` on a new, empty database (at base), with
    the app's migrations pointed at it; dropped after the test."""
    from ..api.checks import disposable_database

    with migrate_app.app_context(), disposable_database(migrate_database_url) as engine:
        yield MigrationRunner(engine)


@pytest.fixture
def migrated_database(migration_runner: MigrationRunner) -> sa.Engine:
    """The engine of a new database upgraded to the head; dropped after the test."""
    migration_runner.upgrade("head")
    return migration_runner.engine
