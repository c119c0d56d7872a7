"""Alembic environment for a Flask app with several databases (binds).

Written by ``flask db init --multidb`` (flask_migrate_ext). The default
database is named ``""``; every key of ``SQLALCHEMY_BINDS`` (or every name
in ``db.bind_names()``) is migrated too, each with its own version table and
its own ``upgrade_<name>()`` / ``downgrade_<name>()`` pair in every revision
file, in one run.
"""

from __future__ import annotations

import logging
import sys
from logging.config import fileConfig
from typing import Any

import sqlalchemy as sa
from alembic import context
from alembic.util import CommandError
from flask import current_app

config = context.config

# Log through the settings in alembic.ini, keeping the app's own loggers.
if config.config_file_name is not None and config.attributes.get(
    "configure_logger", True
):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate_state = current_app.extensions["migrate"]
db = migrate_state.db


def database_names() -> list[str]:
    # flask_migrate_ext knows which databases to work on (--bind,
    # MIGRATE_EXCLUDE_BINDS); under Flask-Migrate, every bind.
    chosen = getattr(migrate_state, "database_names", None)
    if callable(chosen):
        return list(chosen())
    binds = current_app.config.get("SQLALCHEMY_BINDS")
    if binds is not None:
        return ["", *binds]
    return ["", *getattr(db, "bind_names", list)()]


def get_engine(name: str) -> Any:
    bind = name or None
    engines = getattr(db, "engines", None)
    engine = engines[bind] if engines is not None else db.get_engine(bind=bind)
    if hasattr(engine, "sync_engine"):
        raise CommandError(
            f"Database {name or '<default>'!r} has an async engine: this folder"
            " uses the 'flask-multidb' template, use 'aioflask-multidb' for"
            " async engines."
        )
    return engine


def get_metadata(name: str) -> Any:
    bind = name or None
    metadatas = getattr(db, "metadatas", None)
    if metadatas is not None:
        if bind in metadatas:
            return metadatas[bind]
        return sa.MetaData()  # a database with no models yet
    # No per-bind metadata: pick this bind's tables by their bind_key.
    metadata = sa.MetaData()
    for table in db.metadata.tables.values():
        if table.info.get("bind_key") == bind:
            table.to_metadata(metadata)
    return metadata


def known_database_names() -> list[str]:
    # Every database the app configures, including those never migrated
    # (MIGRATE_EXCLUDE_BINDS) or not chosen with --bind.
    known = getattr(migrate_state, "known_database_names", None)
    if callable(known):
        return list(known())
    return database_names()


def check_revisions(names: list[str]) -> None:
    """Refuse revisions that migrate a database the app does not configure.

    Revisions written before a database was added have no functions for it:
    give them empty ones, so that they run (as "nothing to do there").
    """
    shown = ", ".join(repr(name) if name else "<default>" for name in names)
    for script in context.script.walk_revisions():
        module = script.module
        named = {
            attr[len("upgrade_") :]
            for attr in dir(module)
            if attr.startswith("upgrade_") and callable(getattr(module, attr))
        }
        if not named:
            continue  # not a multi-database revision
        unknown = sorted(named - set(names))
        if unknown:
            name = unknown[0]
            raise CommandError(
                f"Database not configured: revision {script.revision} migrates"
                f" database {name!r} (upgrade_{name}()), which the app does not"
                f" configure (configured: {shown}). Add it to the app's binds,"
                f" or delete upgrade_{name}() and downgrade_{name}() from the"
                " revision files if that database is gone for good."
            )
        for name in names:
            for direction in ("upgrade", "downgrade"):
                if not hasattr(module, f"{direction}_{name}"):
                    setattr(module, f"{direction}_{name}", _nothing_to_do)


def _nothing_to_do() -> None:
    pass


def connect(name: str, engine: Any) -> Any:
    try:
        return engine.connect()
    except Exception as error:
        # flask_migrate_ext names the database that failed in its message.
        error.flask_migrate_ext_database = (name, engine.url)  # type: ignore[attr-defined]
        raise


def configure_args() -> dict[str, Any]:
    args = dict(migrate_state.configure_args)
    if args.get("process_revision_directives") is None:
        # Running under Flask-Migrate, which leaves this rule to env.py.
        count = len(database_names())

        def skip_empty(context: Any, revision: Any, directives: list[Any]) -> None:
            if not getattr(config.cmd_opts, "autogenerate", False) or not directives:
                return
            ops_list = directives[0].upgrade_ops_list
            if len(ops_list) >= count and all(ops.is_empty() for ops in ops_list):
                directives[:] = []
                logger.info("No changes in schema detected.")

        args["process_revision_directives"] = skip_empty
    if args.get("include_name") is None:
        # flask_migrate_ext's own tables (its ledger) are not the app's.
        def include_name(name: Any, type_: str, parent_names: Any) -> bool:
            return not (type_ == "table" and str(name).startswith("flask_migrate_ext_"))

        args["include_name"] = include_name
    return args


def run_migrations_offline() -> None:
    """Write each database's migration SQL to the output, one after another."""
    names = database_names()
    check_revisions(known_database_names())
    args = configure_args()
    args.pop("process_revision_directives")
    for name in names:
        logger.info("Migrating database %s", name or "<default>")
        context.configure(
            url=get_engine(name).url,
            target_metadata=get_metadata(name),
            literal_binds=True,
            upgrade_token=f"{name}_upgrades",
            downgrade_token=f"{name}_downgrades",
            **args,
        )
        output = config.output_buffer or sys.stdout
        output.write(f"-- Database: {name or '<default>'}\n\n")
        with context.begin_transaction():
            context.run_migrations(engine_name=name)


def run_migrations(connections: dict[str, Any]) -> None:
    """Run the migrations on every connection; commit all or none."""
    args = configure_args()
    transactions: dict[str, Any] = {}
    try:
        for name, connection in connections.items():
            transactions[name] = connection.begin()
        for name, connection in connections.items():
            logger.info("Migrating database %s", name or "<default>")
            context.configure(
                connection=connection,
                target_metadata=get_metadata(name),
                upgrade_token=f"{name}_upgrades",
                downgrade_token=f"{name}_downgrades",
                **args,
            )
            context.run_migrations(engine_name=name)
        for transaction in transactions.values():
            transaction.commit()
    except BaseException:
        for transaction in transactions.values():
            transaction.rollback()
        raise


def run_migrations_online() -> None:
    """Connect to every database, then run the migrations on all of them."""
    names = database_names()
    check_revisions(known_database_names())
    engines = {name: get_engine(name) for name in names}
    connections: dict[str, Any] = {}
    try:
        for name, engine in engines.items():
            connections[name] = connect(name, engine)
        run_migrations(connections)
    finally:
        for connection in connections.values():
            connection.close()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
