"""Keep Python's cyclic garbage collector from re-scanning what a command
loaded once and keeps until it exits (and keep Pygments out of a command:
:func:`without_mako_highlighting`).

A ``flask db`` process imports Flask, SQLAlchemy, Alembic and the app's
models (hundreds of thousands of objects that live as long as the process)
and then allocates quickly while it reflects, compares or runs revisions.
Each full collection walks everything; measured on a 300-model app,
collections took 0.7 s of a 4 s ``migrate``, and the interpreter's final
collections at exit another 0.2 s or more. None of this changes what the
command does: objects are frozen (left out of collections) only for the
duration of a command, and unfrozen afterwards, so a long-lived process
that runs commands (tests, an app calling the CLI) reclaims memory as usual.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import sys
import typing as t

#: Objects allocated between two young-generation collections while an app
#: is being imported (Python's default is 700: it collects ~15 times as
#: often, finding next to no garbage among class and table definitions).
LOADING_THRESHOLD = 10_000

_exit_hook_registered = False


@contextlib.contextmanager
def fewer_collections() -> t.Iterator[None]:
    """Collect the young generation less often (while importing the app)."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], LOADING_THRESHOLD), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


@contextlib.contextmanager
def frozen() -> t.Iterator[None]:
    """Leave everything alive now out of collections until the block ends."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def skip_collections_at_exit() -> None:
    """Freeze everything when the interpreter exits, before its final
    collections.

    The ``atexit`` handler runs after the command, with output already
    written; the other ``atexit`` handlers still run. In a long-lived
    process it only happens at that process's own exit.
    """
    global _exit_hook_registered
    if not _exit_hook_registered:
        _exit_hook_registered = True
        atexit.register(gc.freeze)


#: Mako, which Alembic imports for its templates, imports Pygments (40-odd
#: modules, ~4.5 MB and ~25 ms) as it is imported, to colour source lines in
#: its HTML error pages. A command never renders one: Alembic uses Mako's
#: text error template.
_PYGMENTS_PLUGIN = "mako.ext.pygmentplugin"


@contextlib.contextmanager
def without_mako_highlighting() -> t.Iterator[None]:
    """While the block runs, Mako's Pygments plugin cannot be imported: Mako,
    if first imported now, falls back to plain HTML error pages, as it does
    where Pygments is not installed. Nothing changes if Mako was imported
    before; the plugin can be imported again after the block."""
    if _PYGMENTS_PLUGIN in sys.modules or "mako.exceptions" in sys.modules:
        yield
        return
    sys.modules[_PYGMENTS_PLUGIN] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if _PYGMENTS_PLUGIN in sys.modules and sys.modules[_PYGMENTS_PLUGIN] is None:
            del sys.modules[_PYGMENTS_PLUGIN]
