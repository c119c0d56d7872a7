"""The tables and columns a revision function drops, read from its source.

The data-loss guard asks this before every upgrade and downgrade, so it
must not run the revision's code: a revision may sleep, call a service or
write files, and would then do so twice. The function's source is parsed
instead, and the drops written the way autogenerate writes them are found:
``op.drop_table("t")``, ``op.drop_column("t", "c")`` and ``batch_op.drop_column("c")``
inside ``with op.batch_alter_table("t") as batch_op``, with literal names
(and ``schema=``). A drop written any other way (names in variables, raw
SQL in ``op.execute``) is reported as not understood, never guessed.
"""

from __future__ import annotations

import ast
import functools
import os
import types
import typing as t

#: ``(table, column or None for the whole table, schema)``.
Drop = tuple[str, "str | None", "str | None"]


class Drops(t.NamedTuple):
    """What a revision function drops, and the drops it could not read."""

    found: list[Drop]
    #: Lines of drop calls whose table or column is not a literal.
    unclear: list[int]


def dropped_by(path: str, function: str) -> Drops | None:
    """The drops of ``function`` (``upgrade``, ``downgrade``, or a
    multi-database script's ``upgrade_<name>``) in the file at ``path``;
    None when the file or the function cannot be read."""
    functions = _functions(path, _mtime(path))
    if functions is None:
        return None
    if functions is _NO_DROPS:
        return Drops([], [])
    return functions.get(function)


def names_no_drop(function: object, path: str) -> bool:
    """Whether ``function``, a function compiled from the file at ``path``,
    certainly drops nothing: neither its code nor code nested in it names a
    ``drop_*`` attribute, which every drop :func:`dropped_by` finds does.
    Cheaper than parsing the file, once its module was executed; False when
    it cannot tell (then parse)."""
    code = getattr(function, "__code__", None)
    if not isinstance(code, types.CodeType) or not _same_file(code.co_filename, path):
        return False
    pending = [code]
    while pending:
        code = pending.pop()
        if any(name.startswith("drop_") for name in code.co_names):
            return False
        pending.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return True


def _same_file(one: str, other: str) -> bool:
    if one == other:
        return True
    return os.path.normcase(os.path.abspath(one)) == os.path.normcase(
        os.path.abspath(other)
    )


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


#: Stands for a file that drops nothing: most revisions, which are not
#: parsed at all.
_NO_DROPS: dict[str, Drops] = {}


@functools.lru_cache(maxsize=256)
def _functions(path: str, mtime: int) -> dict[str, Drops] | None:
    """The drops of each top-level function of the file, kept while its mtime
    is unchanged (the guard asks once per function name and database). Only
    these small results are kept: a parsed tree is ~15 KB a revision."""
    try:
        with open(path, "rb") as f:
            source = f.read()
        if b"drop_" not in source:
            return _NO_DROPS
        tree = ast.parse(source, path)
    except (OSError, SyntaxError, ValueError):
        return None
    return {
        node.name: _drops(node)
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def _drops(function: ast.FunctionDef) -> Drops:
    found: list[Drop] = []
    unclear: list[int] = []
    batches: dict[str, tuple[str | None, str | None]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if (
                    _is_call(call, "op", "batch_alter_table")
                    and isinstance(item.optional_vars, ast.Name)
                    and isinstance(call, ast.Call)
                ):
                    batches[item.optional_vars.id] = (
                        _literal(call.args[0] if call.args else None),
                        _keyword(call, "schema"),
                    )
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        if _is_call(node, "op", "drop_table"):
            table = _literal(node.args[0] if node.args else _kw(node, "table_name"))
            if table is None:
                unclear.append(node.lineno)
            else:
                found.append((table, None, _keyword(node, "schema")))
        elif _is_call(node, "op", "drop_column"):
            table = _literal(node.args[0] if node.args else _kw(node, "table_name"))
            column = _literal(
                node.args[1] if len(node.args) > 1 else _kw(node, "column_name")
            )
            if table is None or column is None:
                unclear.append(node.lineno)
            else:
                found.append((table, column, _keyword(node, "schema")))
        elif (
            isinstance(node.func, ast.Attribute)
            and node.func.attr == "drop_column"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in batches
        ):
            table, schema = batches[node.func.value.id]
            column = _literal(node.args[0] if node.args else _kw(node, "column_name"))
            if table is None or column is None:
                unclear.append(node.lineno)
            else:
                found.append((table, column, schema))
    return Drops(found, unclear)


def _is_call(node: ast.AST, owner: str, name: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == name
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == owner
    )


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _keyword(call: ast.Call, name: str) -> str | None:
    return _literal(_kw(call, name))


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None
