"""Build the Alembic :class:`~alembic.config.Config` a command runs with."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import typing as t

from alembic import util as alembic_util
from alembic.config import Config as AlembicConfig

from ..state import in_cli
from ..state import resolve_directory
from ..state import revision_cache_enabled
from ..state import run_state
from .envfile import TEMPLATES_DIR

if t.TYPE_CHECKING:
    from ..state import MigrateState


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at the time of the write.

    Alembic's ``Config`` binds ``sys.stdout`` when Alembic is imported, so its
    output would bypass a later redirection (Click's test runner, a captured
    stream in an app that calls the API).
    """

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()

    @property
    def encoding(self) -> str:
        return getattr(sys.stdout, "encoding", None) or "utf-8"


class Config(AlembicConfig):
    """Alembic config that finds templates in this package, or in
    ``template_directory`` when given (``init -t path/to/template``)."""

    def __init__(
        self, *args: t.Any, template_directory: str | None = None, **kwargs: t.Any
    ) -> None:
        self.template_directory = template_directory
        kwargs.setdefault("stdout", _CurrentStdout())
        super().__init__(*args, **kwargs)

    def get_template_directory(self) -> str:
        if self.template_directory:
            return self.template_directory
        return os.fspath(TEMPLATES_DIR)


def build_config(
    state: MigrateState,
    directory: str | os.PathLike[str] | None = None,
    x_arg: str | t.Sequence[str] | None = None,
    opts: t.Iterable[str] | None = None,
    template_directory: str | None = None,
) -> AlembicConfig:
    """Return the config for ``state``'s app, after the configure callbacks.

    ``-x`` values of the command group come first, then ``x_arg``; each is
    passed once (Flask-Migrate passed group values twice to some commands).
    """
    directory = resolve_directory(state, directory)
    config = Config(
        os.path.join(directory, "alembic.ini"), template_directory=template_directory
    )
    config.set_main_option("script_location", directory)
    # Our env.py configures logging from alembic.ini for the CLI only; an
    # app calling the API keeps its own logging setup.
    config.attributes["configure_logger"] = in_cli()
    config.attributes["revision_cache"] = revision_cache_enabled()
    if config.cmd_opts is None:
        config.cmd_opts = argparse.Namespace()
    for name in opts or ():
        setattr(config.cmd_opts, name, True)
    if not hasattr(config.cmd_opts, "x"):
        x_values = list(run_state().group_x_args)
        if isinstance(x_arg, str):
            x_values.append(x_arg)
        elif x_arg is not None:
            x_values.extend(x_arg)
        config.cmd_opts.x = x_values
    return state.migrate.call_configure_callbacks(config)


@contextlib.contextmanager
def messages_left_out(prefix: str) -> t.Iterator[None]:
    """Leave out the messages Alembic prints that start with ``prefix``.

    Filtered where Alembic hands over the whole message (``util.msg``), as
    on a terminal it wraps long ones over several lines.
    """
    original = alembic_util.msg

    def filtered(
        msg: str, newline: bool = True, flush: bool = False, quiet: bool = False
    ) -> None:
        if not msg.startswith(prefix):
            original(msg, newline, flush, quiet)

    alembic_util.msg = filtered
    try:
        yield
    finally:
        alembic_util.msg = original
