"""An event loop for env.py files that expect the thread to have one.

Flask-Migrate's ``aioflask`` env.py files (4.0 and later) call
``asyncio.get_event_loop()``. That fails once the thread has no current loop:
after any ``asyncio.run()`` in the process (an earlier command, the app's own
code), and always from Python 3.14. A command whose env.py asks for the
thread's loop therefore runs with one: set only when the thread has none, and
closed afterwards. Other env.py files are left alone, so a sync app's event
loop state is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import typing as t
import warnings

from .envfile import read_env_py


def asks_for_current_loop(location: str) -> bool:
    """Whether the env.py in ``location`` calls ``asyncio.get_event_loop()``."""
    text = read_env_py(location)
    return text is not None and "get_event_loop(" in text


@contextlib.contextmanager
def current_event_loop() -> t.Iterator[None]:
    """Give the thread a current event loop for the block, if it has none."""
    previous = _current_loop()
    if previous is not None and not previous.is_closed():
        yield
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(previous)
        loop.close()


def _current_loop() -> asyncio.AbstractEventLoop | None:
    """The loop set for this thread, without making one.

    ``asyncio.get_event_loop()`` would make one (Python 3.10, 3.11), warn
    (3.12, 3.13) or raise (3.14) when none is set, so the default policy's
    record is read instead; a policy without one counts as having no loop.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # policies, 3.14
        policy = asyncio.get_event_loop_policy()
    local = getattr(policy, "_local", None)
    loop = getattr(local, "_loop", None)
    return loop if isinstance(loop, asyncio.AbstractEventLoop) else None
