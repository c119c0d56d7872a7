"""Explain what autogenerate compared, when its result may surprise.

``migrate`` finding nothing usually means the models were not imported (the
metadata is empty) or the tables were made by ``db.create_all()``; a revision
that adds an unnamed unique constraint or foreign key cannot be downgraded.
This module watches the autogenerate run (through the
``process_revision_directives`` hook every env.py passes on) and reports
such cases with :func:`~flask_migrate_ext.report.report`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import typing as t

from ..report import report
from ..state import running
from .diffs import describe_diff

if t.TYPE_CHECKING:
    from alembic.operations import ops
    from alembic.runtime.migration import MigrationContext

#: At most this many table names are listed in a message.
MAX_LISTED = 10

NO_MODELS = (
    "No models found: the metadata has no tables. Import your models where the"
    " app is created (e.g. in create_app), so that autogenerate can see them."
)


@dataclasses.dataclass
class Comparison:
    """What autogenerate compared for one database."""

    #: ``""`` for the default database, else the bind name.
    database: str
    #: Table names in the models' metadata (``schema.name`` when in a schema).
    model_tables: list[str]
    #: Table names in the database, without the version table and ours.
    database_tables: set[str]
    #: The naming convention of the (first) metadata.
    naming_convention: t.Mapping[t.Any, t.Any]
    #: The operations autogenerate produced for this database.
    upgrade_ops: ops.UpgradeOps
    #: The SQLAlchemy dialect name (``sqlite``, ``postgresql``, ...).
    dialect: str = ""

    @property
    def diffs(self) -> list[t.Any]:
        return list(self.upgrade_ops.as_diffs())

    def diffs_within_tables(self) -> t.Iterator[t.Any]:
        """The diffs, leaving out tables created or dropped whole: a created
        table's diff builds a copy of the table, costly for hundreds."""
        from alembic.operations import ops

        def walk(container: t.Any) -> t.Iterator[t.Any]:
            for op in container.ops:
                if isinstance(op, (ops.CreateTableOp, ops.DropTableOp)):
                    continue
                if hasattr(op, "ops"):
                    yield from walk(op)
                else:
                    diff = op.to_diff_tuple()
                    if isinstance(diff, list):
                        yield from diff
                    else:
                        yield diff

        return walk(self.upgrade_ops)

    def drops_tables(self) -> bool:
        from alembic.operations import ops

        return any(isinstance(op, ops.DropTableOp) for op in self.upgrade_ops.ops)


class Watcher:
    """Records, for each database, what autogenerate compared."""

    def __init__(self) -> None:
        self.comparisons: list[Comparison] = []

    def __call__(
        self, context: MigrationContext, revision: t.Any, directives: list[t.Any]
    ) -> None:
        if not directives:
            return
        upgrade_ops = directives[0].upgrade_ops_list[-1]
        token = str(getattr(upgrade_ops, "upgrade_token", "upgrades"))
        database = token[: -len("_upgrades")] if token != "upgrades" else ""
        metadatas = context.opts.get("target_metadata")
        if metadatas is None:
            metadatas = []
        elif not isinstance(metadatas, (list, tuple)):
            metadatas = [metadatas]
        model_tables = [key for m in metadatas for key in m.tables]
        convention = metadatas[0].naming_convention if metadatas else {}
        self.comparisons.append(
            Comparison(
                database,
                model_tables,
                _database_tables(context),
                convention,
                upgrade_ops,
                context.dialect.name,
            )
        )


def _database_tables(context: MigrationContext) -> set[str]:
    import sqlalchemy as sa

    if context.connection is None:
        return set()
    version_table = context.opts.get("version_table") or "alembic_version"
    names = sa.inspect(context.connection).get_table_names()
    return {
        name
        for name in names
        if name != version_table and not name.startswith("flask_migrate_ext_")
    }


@contextlib.contextmanager
def watching() -> t.Iterator[Watcher]:
    """Watch the autogenerate runs inside the block.

    The watcher sees each result before env.py's ``process_revision_directives``
    (which may empty it) and keeps the operations that hook may edit.
    """
    watcher = Watcher()
    with running(revision_watcher=watcher):
        yield watcher


def explain(
    comparisons: list[Comparison],
    written: bool,
    had_revisions: bool,
    verbose: bool = False,
    command: str = "db",
) -> None:
    """Report what is worth knowing about one autogenerate run."""
    if verbose:
        for comparison in comparisons:
            for line in _per_table(comparison, len(comparisons) > 1):
                report(line)
    model_count = sum(len(c.model_tables) for c in comparisons)
    if written:
        if comparisons and model_count == 0 and _drops_tables(comparisons):
            report(
                "Warning: the metadata has no tables, so this revision drops every"
                " table of the database. Are the models imported where the app is"
                " created? If not, delete the revision file."
            )
        for comparison in comparisons:
            warning = unnamed_constraints_warning(comparison)
            if warning:
                report(warning)
        return
    if not comparisons:
        return  # an env.py that does not pass configure_args on
    if model_count == 0:
        report(NO_MODELS)
    elif not had_revisions and all(
        set(c.model_tables) <= c.database_tables for c in comparisons
    ):
        report(
            f"The database already has all {model_count} tables of the models,"
            " so there is nothing to migrate: were they created with"
            " db.create_all()? To put this database under migrations, write the"
            " initial revision against an empty database, then run"
            f" 'flask {command} stamp head' on this one (see 'create_all and"
            " existing databases' in the documentation)."
        )
    else:
        names = sorted(name for c in comparisons for name in c.model_tables)
        report(
            f"The models' {len(names)} table{'s' if len(names) != 1 else ''}"
            f" ({_listed(names)}) match the database."
        )


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    if len(names) > MAX_LISTED:
        shown += f" and {len(names) - MAX_LISTED} more"
    return shown


def _drops_tables(comparisons: list[Comparison]) -> bool:
    return any(c.drops_tables() for c in comparisons)


def _diff_table(diff: t.Any) -> str:
    """The (schema-qualified) name of the table a diff is about."""
    if isinstance(diff, list):
        return _diff_table(diff[0])
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        table = diff[1]
    elif kind.endswith(("_index", "_constraint", "_fk")):
        table = diff[1].table
    else:  # columns and modify_*: (kind, schema, table name, ...)
        return f"{diff[1]}.{diff[2]}" if diff[1] else str(diff[2])
    return f"{table.schema}.{table.name}" if table.schema else str(table.name)


def _per_table(comparison: Comparison, name_database: bool) -> list[str]:
    by_table: dict[str, list[str]] = {name: [] for name in comparison.model_tables}
    for diff in comparison.diffs:
        by_table.setdefault(_diff_table(diff), []).extend(describe_diff(diff))
    where = (
        f" of database {comparison.database or '<default>'!r}" if name_database else ""
    )
    count = len(by_table)
    lines = [f"Compared {count} table{'s' if count != 1 else ''}{where}:"]
    for table in sorted(by_table):
        changes = by_table[table]
        if not changes:
            lines.append(f"  {table}: in sync")
        lines.extend(f"  {change}" for change in changes)
    return lines


#: Naming-convention keys that name unique constraints and foreign keys.
_CONVENTION_KEYS = {"unique constraint": "uq", "foreign key": "fk"}


def unnamed_constraints_warning(comparison: Comparison) -> str | None:
    """A warning when the revision adds or drops unnamed unique constraints or
    foreign keys that the naming convention does not name.

    SQLite's batch mode cannot create or drop them (the revision fails with
    "Constraint must have a name"); elsewhere the downgrade of an added one
    cannot drop it.
    """
    import sqlalchemy as sa

    found: list[str] = []
    for diff in comparison.diffs_within_tables():
        if not isinstance(diff, tuple) or diff[0] not in (
            "add_constraint",
            "remove_constraint",
            "add_fk",
            "remove_fk",
        ):
            continue
        constraint = diff[1]
        kind = "foreign key" if diff[0].endswith("_fk") else "unique constraint"
        if kind == "unique constraint" and not isinstance(
            constraint, sa.UniqueConstraint
        ):
            continue
        if constraint.name is None and _CONVENTION_KEYS[kind] not in (
            comparison.naming_convention
        ):
            columns = ", ".join(c.name for c in constraint.columns)
            found.append(f"{kind} on {constraint.table.name} ({columns})")
    if not found:
        return None
    if comparison.dialect == "sqlite":
        consequence = (
            "SQLite's batch mode needs constraint names, so the revision fails"
            " with 'Constraint must have a name'"
        )
    else:
        consequence = "the revision's downgrade cannot drop them, and fails"
    return (
        f"Warning: this revision adds or drops unnamed constraints"
        f" ({_listed(found)}): {consequence}. Give the metadata a naming"
        " convention, e.g. db = SQLAlchemy(metadata=MetaData(naming_convention="
        '{"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",'
        ' "ck": "ck_%(table_name)s_%(constraint_name)s",'
        ' "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",'
        ' "pk": "pk_%(table_name)s"})), then delete this revision and run'
        " migrate again."
    )
