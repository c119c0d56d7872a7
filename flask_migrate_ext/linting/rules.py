"""The lint rules: each judges one recorded operation in its revision.

A rule has a code (``FMX001``), a severity, a one-line title and a section
of the docs' lint page (``docs/lint.md#fmx001``). Its check function gets
the operation with what the rule may need to know around it (:class:`Seen`:
the dialect, the tables the revision created before it, the revision's other
operations) and yields a :class:`Hit` per problem.

Severity policy, as strong_migrations has it: an operation that loses data,
fails on a table with rows, or locks a busy table is an ``error`` even when
it is sometimes meant; whoever means it says so in the script
(``# fmx: allow FMX001``), and CI holds the rest. An operation that is safe
in itself but hurts only in some deployments (a rename during a rolling
deploy, a table rewrite) is a ``warning``.
"""

from __future__ import annotations

import dataclasses
import typing as t

import sqlalchemy as sa
from alembic.operations import ops

from ..scripts.recorder import RecordedOp
from ..scripts.recorder import Recording
from .findings import Severity

TableKey = tuple[str | None, str]


@dataclasses.dataclass(frozen=True)
class Hit:
    """One problem a rule found in an operation."""

    message: str
    hint: str


@dataclasses.dataclass(frozen=True)
class Seen:
    """An operation, and what a rule may need to know around it."""

    recorded: RecordedOp
    dialect: str
    #: The tables created earlier in the same revision (schema, name).
    created: frozenset[TableKey]
    #: Every operation of the revision, in order.
    all_ops: tuple[RecordedOp, ...]

    @property
    def op(self) -> ops.MigrateOperation:
        return self.recorded.operation

    def existing(self, table: str, schema: str | None = None) -> bool:
        """Whether ``table`` was there before the revision (it may have rows)."""
        return (schema, table) not in self.created


Check = t.Callable[[Seen], t.Iterator[Hit]]


@dataclasses.dataclass(frozen=True)
class Rule:
    """A lint rule."""

    code: str
    severity: Severity
    title: str
    check: Check

    @property
    def anchor(self) -> str:
        return self.code.lower()


RULES: list[Rule] = []


def rule(code: str, severity: Severity, title: str) -> t.Callable[[Check], Check]:
    """Register the decorated check function as rule ``code``."""

    def register(check: Check) -> Check:
        RULES.append(Rule(code, severity, title, check))
        return check

    return register


def rule_by_code(code: str) -> Rule | None:
    return next((r for r in RULES if r.code == code), None)


def judge(recording: Recording) -> t.Iterator[tuple[Rule, RecordedOp, Hit]]:
    """Every rule's hits on every operation of one recorded script."""
    created: set[TableKey] = set()
    all_ops = tuple(recording.ops)
    for recorded in all_ops:
        seen = Seen(recorded, recording.dialect, frozenset(created), all_ops)
        for r in RULES:
            for hit in r.check(seen):
                yield r, recorded, hit
        operation = recorded.operation
        if isinstance(operation, ops.CreateTableOp):
            created.add((operation.schema, operation.table_name))
        elif isinstance(operation, ops.RenameTableOp):
            key = (operation.schema, operation.table_name)
            if key in created:
                created.add((operation.schema, operation.new_table_name))


def _table(name: str, schema: str | None) -> str:
    return f"{schema}.{name}" if schema else name


def _call(function: str, *args: object) -> str:
    return f"{function}({', '.join(repr(a) for a in args)})"


def _renamed_by(seen: Seen, drop: ops.DropColumnOp) -> list[str]:
    """Columns added to the table ``drop`` drops from, in the same revision."""
    return [
        other.operation.column.name
        for other in seen.all_ops
        if isinstance(other.operation, ops.AddColumnOp)
        and other.operation.table_name == drop.table_name
        and other.operation.schema == drop.schema
    ]


#: Not a check: the linter reports it when a script stops before its end.
UNREADABLE = Rule(
    "FMX000",
    "warning",
    "A script that could not be read to its end",
    lambda seen: iter(()),
)
RULES.append(UNREADABLE)


# -- data loss -----------------------------------------------------------------


@rule("FMX001", "error", "Dropping a table loses its rows")
def drop_table(seen: Seen) -> t.Iterator[Hit]:
    op = seen.op
    if isinstance(op, ops.DropTableOp) and seen.existing(op.table_name, op.schema):
        yield Hit(
            f"{_call('drop_table', op.table_name)} deletes the table and every row"
            " in it",
            "Deploy code that no longer uses the table first, keep its rows"
            " elsewhere if they matter, then mark the drop '# fmx: allow FMX001'.",
        )


@rule("FMX002", "error", "Dropping a column loses its data")
def drop_column(seen: Seen) -> t.Iterator[Hit]:
    op = seen.op
    if (
        isinstance(op, ops.DropColumnOp)
        and seen.existing(op.table_name, op.schema)
        and not _renamed_by(seen, op)  # FMX006 says it better
    ):
        yield Hit(
            f"{_call('drop_column', op.table_name, op.column_name)} deletes the"
            " column's data",
            "Deploy code that no longer reads the column first (remove it from"
            " the model), then mark the drop '# fmx: allow FMX002'.",
        )


@rule("FMX003", "error", "Adding a NOT NULL column without a server default")
def add_not_null_column(seen: Seen) -> t.Iterator[Hit]:
    op = seen.op
    if not isinstance(op, ops.AddColumnOp) or not seen.existing(
        op.table_name, op.schema
    ):
        return
    column = op.column
    if (
        column.nullable
        or column.server_default is not None
        or column.computed is not None
        or column.identity is not None
    ):
        return
    yield Hit(
        f"{_call('add_column', op.table_name, column.name)} adds a NOT NULL column"
        " without a server default: it fails on a table with rows",
        "Add it with nullable=True (or a server_default), fill it, then"
        " alter_column(..., nullable=False).",
    )


_INTEGER_RANK = {sa.SmallInteger: 0, sa.Integer: 1, sa.BigInteger: 2}


def _integer_rank(type_: sa.types.TypeEngine[t.Any]) -> int:
    for cls in type(type_).__mro__:
        if cls in _INTEGER_RANK:
            return _INTEGER_RANK[cls]
    return 1


def _type_change(old: t.Any, new: t.Any) -> str | None:
    """``"narrower"`` (can lose data or fail), ``"rewrite"`` (may rewrite the
    table), or ``None`` (a safe widening) for a column type change."""
    old_type = sa.types.to_instance(old)
    new_type = sa.types.to_instance(new)
    if old_type._type_affinity is not new_type._type_affinity:
        return "narrower"
    if isinstance(old_type, sa.String) and isinstance(new_type, sa.String):
        old_length, new_length = old_type.length, new_type.length
        if new_length is None or (old_length is not None and new_length >= old_length):
            return None
        return "narrower"
    if isinstance(old_type, sa.Integer) and isinstance(new_type, sa.Integer):
        old_rank, new_rank = _integer_rank(old_type), _integer_rank(new_type)
        if new_rank == old_rank:
            return None
        return "rewrite" if new_rank > old_rank else "narrower"
    if isinstance(old_type, sa.Numeric) and isinstance(new_type, sa.Numeric):
        if (new_type.scale or 0) < (old_type.scale or 0) or (
            old_type.precision is not None
            and new_type.precision is not None
            and new_type.precision < old_type.precision
        ):
            return "narrower"
    if repr(old_type) == repr(new_type):
        return None
    return "rewrite"


def _type_changes(seen: Seen) -> t.Iterator[tuple[ops.AlterColumnOp, str | None]]:
    op = seen.op
    if (
        isinstance(op, ops.AlterColumnOp)
        and op.modify_type is not None
        and seen.existing(op.table_name, op.schema)
    ):
        if op.existing_type is None:
            yield op, "unknown"
        else:
            yield op, _type_change(op.existing_type, op.modify_type)


@rule("FMX004", "error", "Changing a column to a type that can lose data")
def narrowing_type_change(seen: Seen) -> t.Iterator[Hit]:
    for op, change in _type_changes(seen):
        if change == "narrower":
            yield Hit(
                f"{_call('alter_column', op.table_name, op.column_name)} changes"
                f" the type from {op.existing_type!r} to {op.modify_type!r}: values"
                " may be cut or fail to convert, and the table is rewritten",
                "Add a column of the new type, copy and check the data, switch"
                " the code over, then drop the old column.",
            )


@rule("FMX005", "warning", "Changing a column's type may rewrite the table")
def rewriting_type_change(seen: Seen) -> t.Iterator[Hit]:
    for op, change in _type_changes(seen):
        if change == "rewrite":
            detail = f"from {op.existing_type!r} to {op.modify_type!r}"
        elif change == "unknown":
            detail = (
                f"to {op.modify_type!r} without existing_type, so whether it"
                " loses data cannot be told"
            )
        else:
            continue
        yield Hit(
            f"{_call('alter_column', op.table_name, op.column_name)} changes the"
            f" type {detail}; the table may be rewritten under an exclusive lock",
            "Give existing_type=...; on a big table, add a new column and"
            " backfill it instead.",
        )


@rule("FMX006", "error", "A dropped and an added column that look like a rename")
def rename_as_drop_and_add(seen: Seen) -> t.Iterator[Hit]:
    op = seen.op
    if isinstance(op, ops.DropColumnOp) and seen.existing(op.table_name, op.schema):
        added = _renamed_by(seen, op)
        if added:
            new = ", ".join(repr(name) for name in added)
            yield Hit(
                f"{_call('drop_column', op.table_name, op.column_name)} with"
                f" add_column of {new} looks like a rename written as drop and add:"
                " the column's data is lost",
                "If it is a rename, use alter_column(..., new_column_name=...)"
                " instead; if not, mark the drop '# fmx: allow FMX006'.",
            )


# -- locks ---------------------------------------------------------------------


@rule("FMX007", "error", "Creating an index without CONCURRENTLY (PostgreSQL)")
def index_not_concurrent(seen: Seen) -> t.Iterator[Hit]:
    op = seen.op
    if (
        seen.dialect == "postgresql"
        and isinstance(op, ops.CreateIndexOp)
        and seen.existing(op.table_name, op.schema)
        and not op.kw.get("postgresql_concurrently")
    ):
        yield Hit(
            f"{_call('create_index', op.index_name, op.table_name)} blocks writes"
            " to the table while the index is built",
            "Pass postgresql_concurrently=True inside"
            " 'with op.get_context().autocommit_block():'.",
        )


_TABLE_CONSTRAINT_OPS = (
    ops.CreateUniqueConstraintOp,
    ops.CreateCheckConstraintOp,
    ops.CreatePrimaryKeyOp,
)
#: The op function, and what it adds.
_CONSTRAINTS: dict[type[ops.AddConstraintOp], tuple[str, str]] = {
    ops.CreateUniqueConstraintOp: ("create_unique_constraint", "unique constraint"),
    ops.CreateCheckConstraintOp: ("create_check_constraint", "check constraint"),
    ops.CreatePrimaryKeyOp: ("create_primary_key", "primary key"),
}


@rule("FMX008", "error", "Adding a constraint to an existing table")
def constraint_validation(seen: Seen) -> t.Iterator[Hit]:
    op = seen.op
    if seen.dialect == "sqlite":
        return
    if isinstance(op, ops.CreateForeignKeyOp):
        table, schema = op.source_table, op.kw.get("source_schema")
        function, kind = "create_foreign_key", "foreign key"
    elif isinstance(op, _TABLE_CONSTRAINT_OPS):
        table, schema = op.table_name, op.schema
        function, kind = _CONSTRAINTS[type(op)]
    else:
        return
    if not seen.existing(table, schema):
        return
    if seen.dialect == "postgresql" and op.kw.get("postgresql_not_valid"):
        return
    if isinstance(op, ops.CreateForeignKeyOp | ops.CreateCheckConstraintOp):
        hint = (
            "On PostgreSQL pass postgresql_not_valid=True, then run"
            " 'ALTER TABLE ... VALIDATE CONSTRAINT ...' in a later revision."
        )
    else:
        hint = (
            "On PostgreSQL create a unique index CONCURRENTLY first, then"
            " 'ALTER TABLE ... ADD CONSTRAINT ... UNIQUE USING INDEX ...'."
        )
    yield Hit(
        f"{_call(function, op.constraint_name, table)} checks every row of an"
        f" existing table while it locks it, to add the {kind}",
        hint,
    )


@rule("FMX009", "warning", "Renaming a table or column that running code uses")
def rename_breaks_running_code(seen: Seen) -> t.Iterator[Hit]:
    op = seen.op
    if isinstance(op, ops.RenameTableOp) and seen.existing(op.table_name, op.schema):
        what = _call("rename_table", op.table_name, op.new_table_name)
    elif (
        isinstance(op, ops.AlterColumnOp)
        and op.modify_name is not None
        and seen.existing(op.table_name, op.schema)
    ):
        what = (
            f"alter_column({op.table_name!r}, {op.column_name!r},"
            f" new_column_name={op.modify_name!r})"
        )
    else:
        return
    yield Hit(
        f"{what} breaks the code still running during a deploy, which uses the"
        " old name",
        "With rolling deploys: add the new name, write both, move the reads,"
        " then drop the old one; or stop the app while migrating.",
    )


@rule("FMX010", "warning", "Making an existing column NOT NULL")
def set_not_null(seen: Seen) -> t.Iterator[Hit]:
    op = seen.op
    if (
        isinstance(op, ops.AlterColumnOp)
        and op.modify_nullable is False
        and op.existing_nullable is not False
        and seen.existing(op.table_name, op.schema)
    ):
        yield Hit(
            f"{_call('alter_column', op.table_name, op.column_name)} sets NOT"
            " NULL: it fails if a row has NULL, and scans the table under an"
            " exclusive lock",
            "Fill the column first; on PostgreSQL add CHECK (... IS NOT NULL)"
            " NOT VALID, VALIDATE it, then set NOT NULL.",
        )


@rule("FMX011", "error", "An ALTER that SQLite can only do in batch mode")
def sqlite_needs_batch(seen: Seen) -> t.Iterator[Hit]:
    op = seen.op
    if seen.dialect != "sqlite" or seen.recorded.batch:
        return
    if isinstance(op, ops.AlterColumnOp):
        only_rename = (
            op.modify_type is None
            and op.modify_nullable is None
            and op.modify_server_default is False
            and op.modify_comment is False
        )
        if only_rename:  # SQLite 3.25+ renames columns in place
            return
        what = _call("alter_column", op.table_name, op.column_name)
    elif isinstance(op, ops.AddConstraintOp | ops.DropConstraintOp):
        name = getattr(op, "constraint_name", None)
        what = f"{type(op).__name__} on {name!r}"
    else:
        return
    yield Hit(
        f"{what} fails on SQLite, which cannot ALTER columns or constraints",
        "Put it in 'with op.batch_alter_table(...) as batch_op:' (Migrate's"
        " render_as_batch=True writes that).",
    )


@rule("FMX012", "error", "CONCURRENTLY inside a transaction (PostgreSQL)")
def concurrently_in_transaction(seen: Seen) -> t.Iterator[Hit]:
    op = seen.op
    if (
        seen.dialect == "postgresql"
        and isinstance(op, ops.CreateIndexOp | ops.DropIndexOp)
        and op.kw.get("postgresql_concurrently")
        and not seen.recorded.autocommit
    ):
        name = "create_index" if isinstance(op, ops.CreateIndexOp) else "drop_index"
        yield Hit(
            f"{_call(name, op.index_name, op.table_name)} with"
            " postgresql_concurrently=True fails inside a transaction block",
            "Run it inside 'with op.get_context().autocommit_block():'.",
        )
