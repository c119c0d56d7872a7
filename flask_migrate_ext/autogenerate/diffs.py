"""Readable one-line descriptions of Alembic's autogenerate diffs.

Alembic reports differences as nested tuples of SQLAlchemy objects; ``check``
shows them as ``+ column employee.email VARCHAR(80)`` instead of a repr.
"""

from __future__ import annotations

import typing as t


def _type(type_: t.Any) -> str:
    try:
        return str(type_)
    except Exception:  # a dialect-only type may not compile generically
        return repr(type_)


def _table_name(table: t.Any) -> str:
    schema = getattr(table, "schema", None)
    return f"{schema}.{table.name}" if schema else str(table.name)


def _qualified(schema: str | None, table: str) -> str:
    return f"{schema}.{table}" if schema else table


def _columns(constraint: t.Any) -> str:
    names = [getattr(c, "name", str(c)) for c in getattr(constraint, "columns", ())]
    expressions = getattr(constraint, "expressions", None)
    if not names and expressions:
        names = [str(e) for e in expressions]
    return ", ".join(str(n) for n in names)


def _describe_object(kind: str, obj: t.Any) -> str:
    table = getattr(obj, "table", None)
    where = f" on {_table_name(table)}" if table is not None else ""
    name = getattr(obj, "name", None) or "(unnamed)"
    return f"{kind} {name}{where} ({_columns(obj)})"


_SIGNS = {"add": "+", "remove": "-"}


def describe_diff(diff: t.Any) -> list[str]:
    """Describe one entry of Alembic's diff list (which may itself be a list)."""
    if isinstance(diff, list):
        return [line for item in diff for line in describe_diff(item)]
    kind = diff[0]
    verb, _, what = kind.partition("_")
    sign = _SIGNS.get(verb, "~")
    if what == "table":
        return [f"{sign} table {_table_name(diff[1])}"]
    if what == "column":
        _, schema, table, column = diff[:4]
        col = f"{_qualified(schema, table)}.{column.name}"
        return [f"{sign} column {col} {_type(column.type)}"]
    if what == "index":
        return [f"{sign} {_describe_object('index', diff[1])}"]
    if what == "constraint":
        return [f"{sign} {_describe_object('constraint', diff[1])}"]
    if what == "fk":
        return [f"{sign} {_describe_object('foreign key', diff[1])}"]
    if verb == "modify":
        _, schema, table, column = diff[:4]
        old, new = diff[-2], diff[-1]
        if what == "type":
            old, new = _type(old), _type(new)
        return [f"~ {what} {_qualified(schema, table)}.{column}: {old} -> {new}"]
    return [f"{sign} {kind} {diff[1:]!r}"]


def describe_diffs(diffs: t.Iterable[t.Any]) -> list[str]:
    """Describe every difference, one line each."""
    return [line for diff in diffs for line in describe_diff(diff)]
