"""Progress messages ("waiting for the lock", "nothing to do") from the library.

The library reports; whoever runs it decides where messages go. The CLI sends
them to stderr; an app calling the API gets them on the ``flask_migrate_ext``
logger at INFO level.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import typing as t

logger = logging.getLogger("flask_migrate_ext")

_reporter: contextvars.ContextVar[t.Callable[[str], None] | None] = (
    contextvars.ContextVar("flask_migrate_ext_reporter", default=None)
)


def report(message: str) -> None:
    """Tell the user about progress."""
    reporter = _reporter.get()
    if reporter is None:
        logger.info(message)
    else:
        reporter(message)


@contextlib.contextmanager
def reporting_to(reporter: t.Callable[[str], None]) -> t.Iterator[None]:
    """Send :func:`report` messages to ``reporter`` inside the block."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)
