"""How ``upgrade`` and ``downgrade`` show their progress events on stderr.

On a terminal, one line updated in place (``\\r``) a few times a second:
which revision of how many, on which database or tenant schema, and for how
long it has been running. It is erased before anything else is written
(Alembic's log lines, warnings, messages, questions) and drawn again after,
and erased at the end, so it never mixes with other output.

Elsewhere (CI logs, containers), one line per revision when it has finished::

    [12/300] a1b2c3 -> d4e5f6 add users table (0.03 s)

With ``--jobs``, the workers send their events to the ``flask db`` process,
which displays them: on a terminal, one line for the whole command (targets
ended of how many, then each running target's revision and clock); else the
same line per revision, each naming its target, written whole.

Alembic's own ``Running upgrade a1b2c3 -> d4e5f6, add users table`` log line
is left alone, so log searches written for Flask-Migrate keep working: it
says a revision started (and stays the last line while a revision hangs),
ours says it finished, where it stands in the run and how long it took.

Click's ``progressbar`` was not used: it draws a bar, which a run whose
revisions take milliseconds to hours fills unevenly, can neither be erased
before other output nor show a clock that ticks while a statement runs, and
leaves its last state on the screen.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import typing as t

import click

from ..progress import duration
from ..progress import ProgressEvent
from ..progress import revision_range
from ..progress import RevisionFinished
from ..progress import RevisionStarted
from ..progress import RunFinished
from ..progress import RunStarted
from ..progress import TargetFinished
from ..progress import TargetsStarted

#: Seconds between two redraws of the line on a terminal (4 Hz).
TICK = 0.25


def revision_line(
    event: RevisionStarted | RevisionFinished, seconds: float, width: int = 0
) -> str:
    """``[12/300] users: a1b2c3 -> d4e5f6 add users table (0.03 s)``, the
    message cut short to fit ``width`` characters (when given)."""
    where = f"{event.target}: " if event.several else ""
    head = f"[{event.index}/{event.total}] {where}"
    head += revision_range(event.source, event.destination)
    tail = f" ({duration(seconds)})"
    message = f" {event.message}" if event.message else ""
    if width:
        room = width - len(head) - len(tail)
        if len(message) > room:
            message = message[: max(room - 3, 0)] + "..." if room > 4 else ""
        if len(head) + len(message) + len(tail) > width:
            return (head + tail)[:width]
    return head + message + tail


class LineDisplay:
    """One line per finished revision (no terminal)."""

    def __init__(self, file: t.IO[str] | None = None) -> None:
        #: Where lines go; Click's stderr at the time of each line by default.
        self.file = file

    def __call__(self, event: ProgressEvent) -> None:
        if isinstance(event, RevisionFinished):
            line = revision_line(event, event.seconds)
            if self.file is None:
                click.echo(line, err=True)
            else:
                self.file.write(f"{line}\n")

    def paused(self) -> t.ContextManager[None]:
        return contextlib.nullcontext()


class TerminalDisplay:
    """The line updated in place on a terminal, while inside the ``with`` block.

    Inside the block ``sys.stderr`` (and ``sys.stdout`` when it is the
    terminal too) are wrapped: a write first erases the line, which is drawn
    again once the cursor is back at the start of a line.
    """

    def __init__(self, stream: t.TextIO) -> None:
        self._stream = stream
        self._lock = threading.RLock()
        self._current: RevisionStarted | None = None
        #: Characters of the line on the screen now (0: none shown).
        self._shown = 0
        #: Nothing else left the cursor in the middle of a line.
        self._at_line_start = True
        self._paused = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._saved: list[tuple[str, t.TextIO]] = []
        self._closed = False

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if isinstance(event, RevisionStarted):
                # Drawn by the ticker, or after Alembic's log line for it.
                self._current = event
            elif isinstance(event, RunFinished):
                self._current = None
                self._erase()

    def __enter__(self) -> TerminalDisplay:
        _active.append(self)
        for name in ("stderr", "stdout"):
            stream = getattr(sys, name)
            if name == "stderr" or _is_terminal(stream):
                self._saved.append((name, stream))
                setattr(sys, name, _ErasingStream(stream, self))
        self._start_ticker()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop_ticker()
        with self._lock:
            self._current = None
            self._closed = True
            self._erase()
            self._unwrap()
        with contextlib.suppress(ValueError):
            _active.remove(self)

    def _unwrap(self) -> None:
        for name, stream in reversed(self._saved):
            if isinstance(getattr(sys, name), _ErasingStream):
                setattr(sys, name, stream)
        self._saved.clear()

    def _start_ticker(self) -> None:
        self._stop.clear()
        self._ticker = threading.Thread(
            target=self._tick, name="flask_migrate_ext progress", daemon=True
        )
        self._ticker.start()

    def _stop_ticker(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=1)
            self._ticker = None

    def _forked(self) -> None:
        """In a process forked inside the block (a ``--jobs`` worker): the
        streams as they were, nothing drawn (the parent draws)."""
        self._lock = threading.RLock()
        self._closed = True
        self._shown = 0
        self._unwrap()

    @contextlib.contextmanager
    def paused(self) -> t.Iterator[None]:
        """No line while a question is asked inside the block."""
        with self._lock:
            self._erase()
            self._paused = True
        try:
            yield
        finally:
            with self._lock:
                self._paused = False
                self._at_line_start = True  # the answer ended with Enter

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            with self._lock:
                self._draw()

    def _line(self, width: int) -> str | None:
        """The line to show now, at most ``width`` characters; ``None``: none."""
        current = self._current
        if current is None:
            return None
        return revision_line(current, time.monotonic() - current.started, width)

    def _draw(self) -> None:
        if self._closed or self._paused or not self._at_line_start:
            return
        width = _width(self._stream) - 1  # the last column would wrap
        line = self._line(width)
        if line is None:
            return
        padding = " " * max(self._shown - len(line), 0)
        self._write(f"\r{line}{padding}")
        if padding:
            self._write(f"\r{line}")
        self._shown = len(line)

    def _erase(self) -> None:
        if self._shown:
            self._write(f"\r{' ' * self._shown}\r")
            self._shown = 0

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed terminal
            self._stream.write(text)
            self._stream.flush()

    def _written(self, text: str) -> None:
        """Someone else wrote ``text``: draw the line again after a full line."""
        self._at_line_start = text.endswith("\n")
        self._draw()


class TargetsDisplay(TerminalDisplay):
    """The line in place for a command over several targets (``--jobs``)::

        [57/200 targets] tenant_042 [3/10] a1b2c3 add users (1.2 s) · tenant_043 ...

    Targets ended of how many, then each running target (in the order they
    started) with its revision and clock, as many as fit the terminal's
    width (``+3``: three more run). Events come from the workers, through
    the ``flask db`` process. A command that runs one target after all shows
    the usual line.
    """

    #: Characters of a revision's message shown per target.
    MESSAGE = 24

    def __init__(self, stream: t.TextIO) -> None:
        super().__init__(stream)
        self._total: int | None = None
        self._ended = 0
        #: Per running target, its last event (insertion order: start order).
        self._running: dict[str, RunStarted | RevisionStarted | RevisionFinished] = {}
        self._separator = _separator(stream)

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if isinstance(event, TargetsStarted):
                self._total = event.total
            elif isinstance(event, TargetFinished):
                self._ended = event.done
                self._running.pop(event.target, None)
            elif isinstance(event, RunFinished):
                self._running.pop(event.target, None)
            else:
                self._running[event.target] = event
            if self._total is None:
                super().__call__(event)

    def _line(self, width: int) -> str | None:
        if self._total is None:
            return super()._line(width)
        if self._ended >= self._total and not self._running:
            return None
        line = f"[{self._ended}/{self._total} targets]"
        now = time.monotonic()
        running = list(self._running.values())
        for n, event in enumerate(running):
            glue = f" {self._separator} " if n else " "
            joined = f"{line}{glue}{self._part(event, now)}"
            if n and len(joined) > width:
                # Those that don't fit, counted.
                more = f" {self._separator} +{len(running) - n}"
                if len(line) + len(more) <= width:
                    line += more
                break
            line = joined
        return line[:width]

    def _part(
        self, event: RunStarted | RevisionStarted | RevisionFinished, now: float
    ) -> str:
        """``tenant_042 [3/10] a1b2c3 add users (1.20 s)``."""
        if isinstance(event, RunStarted):
            return f"{event.target} [0/{event.total}]"
        head = f"{event.target} [{event.index}/{event.total}]"
        if isinstance(event, RevisionFinished):
            return head
        message = event.message or ""
        if len(message) > self.MESSAGE:
            message = message[: self.MESSAGE - 3] + "..."
        text = f"{head} {event.revision} {message}".rstrip()
        return f"{text} ({duration(now - event.started)})"


def _separator(stream: t.TextIO) -> str:
    """``·`` where the terminal's encoding has it."""
    try:
        "·".encode(getattr(stream, "encoding", None) or "ascii")
    except (LookupError, UnicodeEncodeError):
        return "|"
    return "·"


#: The displays inside their ``with`` block (one at most, in practice).
_active: list[TerminalDisplay] = []


def _before_fork() -> None:
    # No thread of ours runs, or holds a lock, while a worker is forked.
    for display in _active:
        display._stop_ticker()


def _after_fork_in_parent() -> None:
    for display in _active:
        display._start_ticker()


def _after_fork_in_child() -> None:
    for display in _active:
        display._forked()
    _active.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


class _ErasingStream:
    """A text stream that erases the progress line before each write."""

    def __init__(self, stream: t.TextIO, display: TerminalDisplay) -> None:
        self._wrapped = stream
        self._display = display

    def write(self, text: str) -> int:
        if not text or not isinstance(text, str):
            return self._wrapped.write(text)
        display = self._display
        with display._lock:
            display._erase()
            written = self._wrapped.write(text)
            if text.endswith("\n"):
                self._wrapped.flush()  # before the line is drawn after it
            display._written(text)
            return written

    def writelines(self, lines: t.Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._wrapped, name)


def _is_terminal(stream: t.IO[str] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


def _width(stream: t.TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        return 80


Display = LineDisplay | TerminalDisplay


@contextlib.contextmanager
def progress_display(
    quiet: bool, sql: bool, parallel: bool = False
) -> t.Iterator[Display | None]:
    """The display for a run of the CLI: none with ``-q`` or ``--sql`` (whose
    SQL goes to stdout as it is), the line in place on a terminal (not a
    ``TERM=dumb`` one), else one line per revision.

    :param parallel: Targets may run in worker processes (``--jobs``),
        whose events this process displays: on a terminal, the line of
        :class:`TargetsDisplay`.
    """
    if quiet or sql:
        yield None
        return
    stderr = sys.stderr
    terminal = _is_terminal(stderr) and os.environ.get("TERM") != "dumb"
    if terminal:
        kind = TargetsDisplay if parallel else TerminalDisplay
        with kind(stderr) as display:
            yield display
        return
    yield LineDisplay()
