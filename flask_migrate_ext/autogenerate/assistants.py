"""Rewrite autogenerate's result before the file is written: renames instead
of drop + add, and NOT NULL columns added in three steps.

Autogenerate cannot tell a renamed column from a dropped one and an added
one, so it writes ``drop_column`` + ``add_column`` and the data is lost when
the revision runs. It also adds a NOT NULL column without a default in one
step, which fails on any table with rows. The functions here edit the
``MigrationScript``'s operations (pure functions over Alembic's op objects);
:class:`Assistant` is the revision watcher ``migrate`` installs, which asks
about each candidate or takes the answers given as options.

"Compatible" types, for a rename, are of the same family: strings (any
length, text, enums), integers (any size, booleans: MySQL stores them as
small integers), numbers (numeric, float), date-times, dates, times, binary,
JSON, UUIDs; any other type must be of the same class.
"""

from __future__ import annotations

import dataclasses
import typing as t

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.operations import ops

from ..errors import RewriteRequestError
from ..report import report
from ..state import database_names

if t.TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.runtime.migration import MigrationContext


@dataclasses.dataclass(frozen=True)
class ColumnRename:
    """``table.old`` becomes ``table.new``."""

    #: What the answer is: yes/no for a rename, a SQL value otherwise.
    kind: t.ClassVar[str] = "rename"
    table: str
    old: str
    new: str
    schema: str | None = None

    @property
    def question(self) -> str:
        table = _qualified(self.table, self.schema)
        return f"Was {table}.{self.old} renamed to {table}.{self.new}?"

    @property
    def option(self) -> str:
        return f"--rename {_qualified(self.table, self.schema)}.{self.old}:{self.new}"

    @property
    def change(self) -> str:
        table = _qualified(self.table, self.schema)
        return f"column {table}.{self.old} is dropped and {table}.{self.new} added"


@dataclasses.dataclass(frozen=True)
class TableRename:
    """Table ``old`` becomes ``new``."""

    #: What the answer is: yes/no for a rename, a SQL value otherwise.
    kind: t.ClassVar[str] = "rename"
    old: str
    new: str
    schema: str | None = None

    @property
    def question(self) -> str:
        return (
            f"Was table {_qualified(self.old, self.schema)} renamed to"
            f" {_qualified(self.new, self.schema)}?"
        )

    @property
    def option(self) -> str:
        return f"--rename-table {_qualified(self.old, self.schema)}:{self.new}"

    @property
    def change(self) -> str:
        return (
            f"table {_qualified(self.old, self.schema)} is dropped and"
            f" {_qualified(self.new, self.schema)}, with the same columns, created"
        )


@dataclasses.dataclass(frozen=True)
class NotNullColumn:
    """A NOT NULL column without a default added to an existing table."""

    #: What the answer is: yes/no for a rename, a SQL value otherwise.
    kind: t.ClassVar[str] = "value"
    table: str
    column: str
    type: str
    schema: str | None = None

    @property
    def name(self) -> str:
        return f"{_qualified(self.table, self.schema)}.{self.column}"

    @property
    def question(self) -> str:
        return (
            f"{self.name} ({self.type}) is added NOT NULL without a default. SQL"
            " value for the existing rows (e.g. 0 or 'unknown'; empty: leave as is)"
        )


Question = ColumnRename | TableRename | NotNullColumn
#: Asked about each candidate: ``True``/``False`` for a rename, the SQL value
#: (or ``None`` to leave the step as it is) for a NOT NULL column.
Ask = t.Callable[[Question], "bool | str | None"]


def _qualified(table: str, schema: str | None) -> str:
    return f"{schema}.{table}" if schema else table


def _split_table(text: str) -> tuple[str | None, str]:
    schema, _, table = text.rpartition(".")
    return schema or None, table


def parse_column_rename(text: str) -> ColumnRename:
    """``[schema.]table.old:new``, as ``--rename`` takes it."""
    where, _, new = text.partition(":")
    path, _, old = where.rpartition(".")
    schema, table = _split_table(path)
    if not (table and old and new) or "." in new:
        raise RewriteRequestError(
            f"--rename {text!r}: write it as table.old_column:new_column."
        )
    return ColumnRename(table, old, new, schema)


def parse_table_rename(text: str) -> TableRename:
    """``[schema.]old:new``, as ``--rename-table`` takes it."""
    where, _, new = text.partition(":")
    schema, old = _split_table(where)
    if not (old and new) or "." in new:
        raise RewriteRequestError(
            f"--rename-table {text!r}: write it as old_table:new_table."
        )
    return TableRename(old, new, schema)


def parse_default(text: str) -> tuple[str, str]:
    """``[schema.]table.column=VALUE``, as ``--default`` takes it: the column's
    qualified name and the SQL value."""
    name, _, value = text.partition("=")
    if "." not in name or not value.strip() or name.endswith("."):
        raise RewriteRequestError(
            f"--default {text!r}: write it as table.column=SQL_VALUE"
            " (e.g. employee.age=0 or \"employee.status='new'\")."
        )
    return name.strip(), value.strip()


# -- types -----------------------------------------------------------------

_FAMILIES: tuple[tuple[type[sa.types.TypeEngine[t.Any]], ...], ...] = (
    (sa.String,),
    (sa.Integer, sa.Boolean),
    (sa.Numeric,),  # Float is a Numeric
    (sa.DateTime,),
    (sa.Date,),
    (sa.Time,),
    (sa.LargeBinary, sa.types._Binary),
    (sa.JSON,),
    (sa.Uuid,),
)


def _family(type_: sa.types.TypeEngine[t.Any]) -> object:
    affinity = type_._type_affinity or type(type_)
    for family in _FAMILIES:
        if issubclass(affinity, family):
            return family
    return affinity


def compatible(
    old: sa.types.TypeEngine[t.Any], new: sa.types.TypeEngine[t.Any]
) -> bool:
    """Whether a column of type ``old`` may have been renamed to one of ``new``."""
    return _family(old) == _family(new)


def _same_type(
    old: sa.types.TypeEngine[t.Any], new: sa.types.TypeEngine[t.Any]
) -> bool:
    """Close enough that the rename need not change the type too."""
    return type(old)._type_affinity == type(new)._type_affinity and getattr(
        old, "length", None
    ) == getattr(new, "length", None)


# -- column renames --------------------------------------------------------


def _table_ops(
    container: ops.OpContainer, table: str, schema: str | None
) -> list[ops.ModifyTableOps]:
    return [
        op
        for op in container.ops
        if isinstance(op, ops.ModifyTableOps)
        and op.table_name == table
        and op.schema == schema
    ]


def column_rename_candidates(upgrade_ops: ops.UpgradeOps) -> list[ColumnRename]:
    """Every (dropped, added) pair of compatible columns of a table."""
    found = []
    for table_ops in upgrade_ops.ops:
        if not isinstance(table_ops, ops.ModifyTableOps):
            continue
        dropped = [op for op in table_ops.ops if isinstance(op, ops.DropColumnOp)]
        added = [op for op in table_ops.ops if isinstance(op, ops.AddColumnOp)]
        for drop in dropped:
            old = drop.to_column()
            for add in added:
                if compatible(old.type, add.column.type):
                    found.append(
                        ColumnRename(
                            table_ops.table_name,
                            drop.column_name,
                            add.column.name,
                            table_ops.schema,
                        )
                    )
    return found


def rename_column(
    upgrade_ops: ops.UpgradeOps, downgrade_ops: ops.DowngradeOps, rename: ColumnRename
) -> None:
    """Turn the drop + add of ``rename`` into ``alter_column(new_column_name=)``,
    and the downgrade's into the rename back."""
    _rename_column_in(upgrade_ops, rename.table, rename.schema, rename.old, rename.new)
    _rename_column_in(
        downgrade_ops, rename.table, rename.schema, rename.new, rename.old
    )


def _rename_column_in(
    container: ops.OpContainer, table: str, schema: str | None, old: str, new: str
) -> None:
    for table_ops in _table_ops(container, table, schema):
        drop = next(
            (
                op
                for op in table_ops.ops
                if isinstance(op, ops.DropColumnOp) and op.column_name == old
            ),
            None,
        )
        add = next(
            (
                op
                for op in table_ops.ops
                if isinstance(op, ops.AddColumnOp) and op.column.name == new
            ),
            None,
        )
        if drop is None or add is None:
            continue
        before, after = drop.to_column(), add.column
        alter = ops.AlterColumnOp(
            table,
            old,
            schema=schema,
            existing_type=before.type,
            existing_nullable=before.nullable,
            existing_server_default=before.server_default or False,
            modify_name=new,
            modify_type=None if _same_type(before.type, after.type) else after.type,
            modify_nullable=(
                None if before.nullable == after.nullable else after.nullable
            ),
        )
        table_ops.ops = [
            alter if op is add else op for op in table_ops.ops if op is not drop
        ]
        return


# -- table renames ---------------------------------------------------------


def table_rename_candidates(upgrade_ops: ops.UpgradeOps) -> list[TableRename]:
    """Every (dropped, created) pair of tables with the same columns, of
    compatible types, in the same schema."""
    created = [op for op in upgrade_ops.ops if isinstance(op, ops.CreateTableOp)]
    dropped = [op for op in upgrade_ops.ops if isinstance(op, ops.DropTableOp)]
    found = []
    for drop in dropped:
        old = {c.name: c.type for c in drop.to_table().columns}
        for create in created:
            if create.schema != drop.schema:
                continue
            new = {c.name: c.type for c in create.columns if isinstance(c, sa.Column)}
            if old.keys() == new.keys() and all(
                compatible(old[name], new[name]) for name in old
            ):
                found.append(
                    TableRename(drop.table_name, create.table_name, drop.schema)
                )
    return found


def rename_table(
    upgrade_ops: ops.UpgradeOps, downgrade_ops: ops.DowngradeOps, rename: TableRename
) -> None:
    """Turn the drop + create of ``rename`` into ``rename_table``, and the
    downgrade's into the rename back.

    The old table's index drops move before the rename (they name the old
    table); the new table's index creations stay after it.
    """
    _rename_table_in(upgrade_ops, rename.old, rename.new, rename.schema)
    _rename_table_in(downgrade_ops, rename.new, rename.old, rename.schema)


def _rename_table_in(
    container: ops.OpContainer, old: str, new: str, schema: str | None
) -> None:
    old_table_ops = _table_ops(container, old, schema)
    result: list[ops.MigrateOperation] = []
    for op in container.ops:
        if isinstance(op, ops.CreateTableOp) and (op.table_name, op.schema) == (
            new,
            schema,
        ):
            result.extend(old_table_ops)
            result.append(TableRenameOp(old, new, schema=schema))
        elif op in old_table_ops or (
            isinstance(op, ops.DropTableOp)
            and (op.table_name, op.schema) == (old, schema)
        ):
            continue
        else:
            result.append(op)
    container.ops = result


class TableRenameOp(ops.RenameTableOp):
    """``rename_table`` as autogenerate's result: with a diff tuple
    (``("rename_table", schema, old, new)``) and a reverse, which Alembic's
    operation lacks (it never autogenerates one)."""

    def to_diff_tuple(self) -> tuple[t.Any, ...]:
        return ("rename_table", self.schema, self.table_name, self.new_table_name)

    def reverse(self) -> TableRenameOp:
        return TableRenameOp(self.new_table_name, self.table_name, schema=self.schema)


def _render_rename_table(autogen_context: AutogenContext, op: ops.RenameTableOp) -> str:
    prefix = autogen_context.opts.get("alembic_module_prefix", "op.")
    schema = f", schema={op.schema!r}" if op.schema else ""
    return f"{prefix}rename_table({op.table_name!r}, {op.new_table_name!r}{schema})"


# Alembic never autogenerates a rename, so it has no renderer for one.
if (ops.RenameTableOp, "default") not in renderers._registry:
    renderers.dispatch_for(ops.RenameTableOp)(_render_rename_table)


# -- NOT NULL columns ------------------------------------------------------


def not_null_candidates(upgrade_ops: ops.UpgradeOps) -> list[NotNullColumn]:
    """NOT NULL columns without a server default added to existing tables."""
    found = []
    for table_ops in upgrade_ops.ops:
        if not isinstance(table_ops, ops.ModifyTableOps):
            continue
        for op in table_ops.ops:
            if not isinstance(op, ops.AddColumnOp):
                continue
            column = op.column
            if column.nullable or column.server_default is not None:
                continue
            if column.primary_key or column.computed is not None:
                continue
            found.append(
                NotNullColumn(
                    table_ops.table_name,
                    column.name,
                    repr(column.type),
                    table_ops.schema,
                )
            )
    return found


def add_in_three_steps(
    upgrade_ops: ops.UpgradeOps,
    column: NotNullColumn,
    value: str,
    dialect: sa.Dialect,
) -> None:
    """Add ``column`` nullable, fill the existing rows with ``value`` (SQL),
    then make it NOT NULL. The downgrade (drop the column) stays as it is."""
    result: list[ops.MigrateOperation] = []
    for table_ops in upgrade_ops.ops:
        add = None
        if isinstance(table_ops, ops.ModifyTableOps) and (
            table_ops.table_name,
            table_ops.schema,
        ) == (column.table, column.schema):
            add = next(
                (
                    op
                    for op in table_ops.ops
                    if isinstance(op, ops.AddColumnOp)
                    and op.column.name == column.column
                ),
                None,
            )
        if add is None:
            result.append(table_ops)
            continue
        assert isinstance(table_ops, ops.ModifyTableOps)
        nullable = add.column._copy()
        nullable.nullable = True
        table_ops.ops = [
            ops.AddColumnOp(column.table, nullable, schema=column.schema)
            if op is add
            else op
            for op in table_ops.ops
        ]
        result.append(table_ops)
        result.append(ops.ExecuteSQLOp(_backfill_sql(column, value, dialect)))
        set_not_null = ops.AlterColumnOp(
            column.table,
            column.column,
            schema=column.schema,
            existing_type=add.column.type,
            existing_nullable=True,
            modify_nullable=False,
        )
        result.append(
            ops.ModifyTableOps(column.table, [set_not_null], schema=column.schema)
        )
    upgrade_ops.ops = result


def _backfill_sql(column: NotNullColumn, value: str, dialect: sa.Dialect) -> str:
    table = sa.table(column.table, sa.column(column.column), schema=column.schema)
    update = table.update().values({column.column: sa.literal_column(value)})
    return str(update.compile(dialect=dialect))


# -- the watcher -----------------------------------------------------------


@dataclasses.dataclass
class Assistant:
    """The revision watcher of one ``migrate`` run.

    Requested renames and values are applied where they match; every other
    candidate is asked about with ``ask`` or, without it, reported (renames)
    or left alone (NOT NULL columns). A request matching no candidate is an
    error raised before the file is written.
    """

    column_renames: list[ColumnRename] = dataclasses.field(default_factory=list)
    table_renames: list[TableRename] = dataclasses.field(default_factory=list)
    #: ``[schema.]table.column`` -> SQL value.
    defaults: dict[str, str] = dataclasses.field(default_factory=dict)
    ask: Ask | None = None
    command: str = "db"
    _used: set[object] = dataclasses.field(default_factory=set)
    _seen: set[int] = dataclasses.field(default_factory=set)

    def __call__(
        self,
        context: MigrationContext,
        revision: t.Any,
        directives: list[ops.MigrationScript],
    ) -> None:
        if not directives:
            return
        script = directives[0]
        pairs = zip(script.upgrade_ops_list, script.downgrade_ops_list, strict=False)
        for upgrade_ops, downgrade_ops in pairs:
            if id(upgrade_ops) in self._seen:
                continue
            self._seen.add(id(upgrade_ops))
            self._tables(upgrade_ops, downgrade_ops)
            self._columns(upgrade_ops, downgrade_ops)
            self._not_null(upgrade_ops, context.dialect)
        if self._last(script):
            self._check_all_used()

    def _tables(
        self, upgrade_ops: ops.UpgradeOps, downgrade_ops: ops.DowngradeOps
    ) -> None:
        taken: set[str] = set()
        for candidate in table_rename_candidates(upgrade_ops):
            if candidate.old in taken or candidate.new in taken:
                continue
            if self._decide(candidate, candidate in self.table_renames):
                rename_table(upgrade_ops, downgrade_ops, candidate)
                taken.update((candidate.old, candidate.new))

    def _columns(
        self, upgrade_ops: ops.UpgradeOps, downgrade_ops: ops.DowngradeOps
    ) -> None:
        taken: set[tuple[str, str]] = set()
        for candidate in column_rename_candidates(upgrade_ops):
            keys = {
                (candidate.table, candidate.old),
                (candidate.table, "+" + candidate.new),
            }
            if keys & taken:
                continue
            if self._decide(candidate, candidate in self.column_renames):
                rename_column(upgrade_ops, downgrade_ops, candidate)
                taken.update(keys)

    def _decide(self, candidate: ColumnRename | TableRename, requested: bool) -> bool:
        if requested:
            self._used.add(candidate)
            return True
        if self.ask is not None:
            return bool(self.ask(candidate))
        report(
            f"Warning: {candidate.change}: written as drop + add, which loses the"
            " data. If it is a rename, delete this revision and run"
            f" 'flask {self.command} migrate {candidate.option}'."
        )
        return False

    def _not_null(self, upgrade_ops: ops.UpgradeOps, dialect: sa.Dialect) -> None:
        for candidate in not_null_candidates(upgrade_ops):
            value = self.defaults.get(candidate.name)
            if value is not None:
                self._used.add(candidate.name)
            elif self.ask is not None:
                answer = self.ask(candidate)
                value = answer.strip() if isinstance(answer, str) else None
            if value:
                add_in_three_steps(upgrade_ops, candidate, value, dialect)

    def _last(self, script: ops.MigrationScript) -> bool:
        """Whether every database has been compared (a multi-database env.py
        shows each database's result in turn)."""
        ops_list = script.upgrade_ops_list
        if all(each.upgrade_token == "upgrades" for each in ops_list):
            return True
        return len(ops_list) >= len(database_names())

    def _check_all_used(self) -> None:
        unused = [
            f"--rename-table {_qualified(r.old, r.schema)}:{r.new}"
            for r in self.table_renames
            if r not in self._used
        ]
        unused += [
            f"--rename {_qualified(r.table, r.schema)}.{r.old}:{r.new}"
            for r in self.column_renames
            if r not in self._used
        ]
        unused += [
            f"--default {name}={value}"
            for name, value in self.defaults.items()
            if name not in self._used
        ]
        if unused:
            raise RewriteRequestError(
                f"{', '.join(unused)}: no such change in this revision (a rename"
                " needs a dropped column or table and an added one of compatible"
                " type; a default, a NOT NULL column added to an existing table)."
                " Nothing was written."
            )
