"""``--jobs`` and ``--continue-on-error``, and the lines a command over
several targets prints: one per target as it finishes, then a summary.

A command over one target prints what it always printed: these lines
appear only with several (tenant schemas; binds, when asked for targets).
They go to stderr, with the runs' own messages, so stdout keeps what the
command prints anyway (``current``'s revisions, JSON).

Importing this module does not import Alembic.
"""

from __future__ import annotations

import contextlib
import time
import typing as t

import click

from .options import GROUP_VERBOSE_KEY

if t.TYPE_CHECKING:
    from ..apply.targets import TargetResult

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

Command = t.Literal["upgrade", "downgrade", "current", "check"]

jobs_option = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Run this many targets (tenant schemas; binds) at once, each in a"
    " worker process with its own lock and transactions.",
)
continue_option = click.option(
    "--continue-on-error",
    is_flag=True,
    help="Go on with the other targets after one fails (by default no new"
    " target starts; those running finish).",
)


def with_target_options(f: F) -> F:
    for option in reversed([jobs_option, continue_option]):
        f = option(f)
    return f


def check_jobs(jobs: int, sql: bool = False) -> None:
    """Refuse ``--jobs`` with ``--sql``, before the app's databases are read."""
    if sql and jobs > 1:
        raise click.UsageError(
            "--jobs runs targets against their databases; --sql writes their"
            " SQL instead. Use one or the other."
        )


#: Per command: the word for a target that changed something, for one that
#: had nothing to do, and the line of one that had nothing to do.
_WORDS: dict[str, tuple[str, str, str]] = {
    "upgrade": ("upgraded", "up to date", "up to date"),
    "downgrade": ("downgraded", "unchanged", "nothing to downgrade"),
    "current": ("read", "read", ""),
    "check": ("in sync", "in sync", "in sync"),
}


def _revisions(heads: tuple[str, ...] | None) -> str:
    if heads is None:
        return "?"
    return ", ".join(heads) or "base"


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f} s"


def target_line(result: TargetResult, command: Command) -> str:
    """One line saying what happened on a target."""
    done, _, nothing = _WORDS[command]
    if result.status == "skipped":
        what = "skipped (not started)"
    elif result.status in ("failed", "interrupted"):
        reason = (result.error or "").strip().splitlines()
        first = reason[0] if reason else "(no message)"
        word = "FAILED" if result.status == "failed" else "INTERRUPTED"
        what = f"{word}: {first}" if result.status == "failed" else word
        if result.after is not None:
            what += f" (now at {_revisions(result.after)})"
    elif command == "current":
        what = f"at {_revisions(result.after)}"
    elif result.steps:
        count = len(result.steps)
        what = (
            f"{_revisions(result.before)} -> {_revisions(result.after)}"
            f" ({count} revision{'s' if count != 1 else ''},"
            f" {_seconds(result.seconds)})"
        )
    else:
        what = nothing
    return f"{result.label}: {what}"


def summary(results: t.Sequence[TargetResult], command: Command, seconds: float) -> str:
    """``20 targets: 18 upgraded, 1 up to date, 1 failed (4.1 s)``."""
    done, unchanged, _ = _WORDS[command]
    counts: dict[str, int] = {}
    for result in results:
        word: str = result.status
        if result.status == "done":
            word = done if result.steps else unchanged
        counts[word] = counts.get(word, 0) + 1
    order = [done, unchanged, "failed", "interrupted", "skipped"]
    parts = [
        f"{counts[word]} {word}" for word in dict.fromkeys(order) if word in counts
    ]
    return f"{len(results)} targets: {', '.join(parts)} ({_seconds(seconds)})"


def _details(result: TargetResult, verbose: bool) -> list[str]:
    """The failed target's other lines: where it failed, the state it left."""
    if result.status != "failed":
        return []
    lines = (result.error or "").strip().splitlines()[1:]
    if verbose and result.traceback:
        lines.extend(result.traceback.rstrip().splitlines())
    return [line if line.startswith(" ") else f"  {line}" for line in lines]


@contextlib.contextmanager
def reporting(command: Command) -> t.Iterator[None]:
    """Print each target's line as it finishes, and the summary at the end
    (also when targets failed or the command was stopped)."""
    from ..api.targets import listening  # the API imports Alembic

    ctx = click.get_current_context(silent=True)
    verbose = bool(ctx and ctx.meta.get(GROUP_VERBOSE_KEY))
    seen: list[TargetResult] = []
    started = time.perf_counter()

    def tell(result: TargetResult) -> None:
        seen.append(result)
        if result.log:
            click.echo(result.log, nl=False, err=True)
        click.echo(target_line(result, command), err=True)
        for line in _details(result, verbose):
            click.echo(line, err=True)

    try:
        with listening(tell):
            yield
    finally:
        if seen:
            took = time.perf_counter() - started
            click.echo(summary(seen, command, took), err=True)
