"""The CLI's one error boundary: exceptions become a short message and an exit
code from :class:`~flask_migrate_ext.errors.ExitCode`; SIGINT and SIGTERM
stop the server's statement, then unwind."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import traceback
import typing as t

import click
from flask.cli import AppGroup
from flask.cli import with_appcontext as flask_with_appcontext

from ..errors import ExitCode
from ..errors import first_line
from ..errors import MigrateError
from ..report import reporting_to
from ..state import running
from . import collector
from .options import GROUP_VERBOSE_KEY
from .options import group_x_args

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so it unwinds like Ctrl-C.

    A ``KeyboardInterrupt`` subclass, so database drivers that cancel the
    running statement on Ctrl-C (psycopg) do so on SIGTERM too.
    """


#: The signals received while the command runs; the first one stops it.
_received: list[int] = []


def _stop(signum: int, frame: object) -> None:
    if _received:
        # Already stopping: a second Ctrl-C must not cut short the cleanup
        # that records the interrupted run and releases the lock.
        _received.append(signum)
        return
    _received.append(signum)
    # Stop the server's statement first: unwinding rolls back on the same
    # connection, which would otherwise wait for the statement to finish.
    # (Imported here: the runner has loaded it by the time a run is stopped,
    # and `flask --help` need not.)
    from ..apply.interrupt import cancel_running

    cancel_running()
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def _signals_unwind() -> t.Iterator[None]:
    """SIGINT and SIGTERM cancel server statements, then unwind as exceptions."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = {
        sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            # Once stopped, the process only reports and exits (130, 143):
            # a further signal must not turn that into a death by signal.
            signal.signal(sig, signal.SIG_IGN if _received else handler)


def _verbose() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get(GROUP_VERBOSE_KEY))


@contextlib.contextmanager
def user_errors() -> t.Iterator[None]:
    """The CLI's one error boundary: a short message on stderr and an exit code.

    Errors raised by the API carry their exit code. Anything else is a bug
    or an environment problem: one line too, and the traceback with
    ``flask db --verbose``.
    """
    collector.skip_collections_at_exit()
    try:
        with (
            collector.without_mako_highlighting(),
            collector.frozen(),
            _signals_unwind(),
            reporting_to(_echo_err),
            running(cli=True, group_x_args=tuple(group_x_args())),
        ):
            yield
    except MigrateError as e:
        if _verbose():
            traceback.print_exc()
        click.echo(f"Error: {e}", err=True)
        raise click.exceptions.Exit(int(e.exit_code)) from None
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        click.echo("Stopped by SIGTERM." if terminated else "Interrupted.", err=True)
        code = ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED
        raise click.exceptions.Exit(int(code)) from None
    except (click.exceptions.Exit, click.ClickException, click.Abort):
        raise
    except Exception as e:
        if _verbose():
            raise
        summary = first_line(e) or "(no message)"
        click.echo(f"Error: {type(e).__name__}: {summary}", err=True)
        click.echo(
            "Run with 'flask db --verbose ...' to see the full traceback.", err=True
        )
        raise click.exceptions.Exit(int(ExitCode.ERROR)) from None


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def migrate_command(
    *args: t.Any, with_appcontext: bool = True, **kwargs: t.Any
) -> t.Callable[[F], click.Command]:
    """Like :func:`click.command`, for a ``flask db`` command: it runs in the
    app context (unless told not to) and inside :func:`user_errors`."""

    def wrap(f: F) -> click.Command:
        @functools.wraps(f)
        def callback(*f_args: t.Any, **f_kwargs: t.Any) -> t.Any:
            with user_errors():
                return f(*f_args, **f_kwargs)

        if with_appcontext:
            callback = flask_with_appcontext(callback)
        command: click.Command = click.command(*args, **kwargs)(callback)
        return command

    return wrap


class MigrateGroup(AppGroup):
    """An :class:`~flask.cli.AppGroup` whose commands report :class:`MigrateError`
    as a one-line message and its exit code (see :func:`migrate_command`)."""

    def command(self, *args: t.Any, **kwargs: t.Any) -> t.Callable[[F], click.Command]:  # type: ignore[override]
        def wrap(f: F) -> click.Command:
            command = migrate_command(*args, **kwargs)(f)
            self.add_command(command)
            return command

        return wrap
