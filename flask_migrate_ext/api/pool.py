"""Run targets in worker processes, forked once the app is loaded (``--jobs``).

Alembic's ``context`` and ``op`` are module-level proxies, and the rules
applied to ``context.configure`` are installed process-wide: env.py cannot
run in two threads at once, so parallel targets run in processes. Each
worker is forked from this process (the app, its config and the migration
scripts already loaded), drops the database connections it inherited, then
runs one target at a time as the parent hands them out, sending back a
picklable result. The parent decides what starts next, so a failure stops
new targets at once while the running ones finish.

While it runs an item, a worker may also send messages (:func:`send`: small
pickles, progress events) on the same pipe; the parent reads them in the
loop that waits for results and hands each to a callback as it arrives, in
the order the worker sent them, before that item's result.

Signals: the parent waits with SIGINT and SIGTERM unblocked only while it
waits, and a worker blocks them while it sends, so a signal never cuts a
message in half. Stopped, it passes the
signal on to the workers still running (each stops its statement and
records the run as interrupted, once however many signals it gets) and
waits for their results.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import multiprocessing
import os
import pickle
import selectors
import signal
import sys
import typing as t

from ..apply.interrupt import cancel_running

if t.TYPE_CHECKING:
    from multiprocessing.connection import Connection

T = t.TypeVar("T")
R = t.TypeVar("R")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: What a worker sends: ``(_RESULT, result)`` once per item, after any number
#: of ``(_MESSAGE, payload)``.
_RESULT = 0
_MESSAGE = 1
_READ = selectors.EVENT_READ


def can_fork() -> bool:
    """Whether workers can be forked here (not on Windows; macOS can, though
    Python prefers spawn there)."""
    return "fork" in multiprocessing.get_all_start_methods() and hasattr(
        signal, "pthread_sigmask"
    )


@dataclasses.dataclass
class _Worker:
    process: t.Any
    conn: Connection
    index: int | None = None  # the item it runs now


class Died(Exception):
    """A worker process ended without sending its result (killed, crashed)."""


def run_parallel(
    jobs: int,
    items: t.Sequence[T],
    run: t.Callable[[T], R],
    *,
    child_setup: t.Callable[[], None],
    done: t.Callable[[int, R | Died], bool],
    message: t.Callable[[int, t.Any], None] | None = None,
) -> tuple[set[int], BaseException | None]:
    """Run ``run(item)`` for each item in ``jobs`` forked workers.

    :param run: Runs one item in a worker; must not raise (it records
        errors in what it returns, which must be picklable).
    :param child_setup: Called once in each worker, after the fork.
    :param done: Called in this process with each item's index and result
        (or :class:`Died`), in the order they finish; returns whether to go
        on starting items.
    :param message: Called in this process with the index of the item
        running and each payload its worker passed to :func:`send`, as they
        arrive (before that item's ``done``); must not raise. Without it,
        messages are dropped.
    :return: The indexes never started, and the ``KeyboardInterrupt`` that
        stopped this process, if one did (the caller re-raises it).
    """
    context = multiprocessing.get_context("fork")
    pending = collections.deque(range(len(items)))
    workers: list[_Worker] = []
    # A buffer copied by the fork would be written twice, once per process.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    for _ in range(min(jobs, len(items))):
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=_serve,
            args=(child_end, items, run, child_setup),
            name="flask_migrate_ext worker",
            daemon=True,
        )
        process.start()
        child_end.close()
        workers.append(_Worker(process, parent_end))
    stopped: BaseException | None = None
    going_on = True
    with _blocked(), selectors.DefaultSelector() as selector:
        for worker in workers:
            _hand_out(worker, pending if going_on else None, selector)
        while any(w.index is not None for w in workers):
            ready, interrupt = _wait(selector)
            if interrupt is not None:
                going_on = False
                if stopped is None:
                    stopped = interrupt
                _pass_on(interrupt, [w for w in workers if w.index is not None])
                continue
            for worker, readable, ended in ready:
                index = worker.index
                if index is None:
                    continue
                outcome = _receive(worker, readable, ended, message)
                if outcome is _PENDING:
                    continue
                _unwatch(worker, selector)
                worker.index = None
                if not done(index, outcome):
                    going_on = False
                more = pending if going_on and stopped is None else None
                _hand_out(worker, more, selector)
    for worker in workers:
        worker.process.join()
        worker.conn.close()
    return set(pending), stopped


def _hand_out(
    worker: _Worker,
    pending: collections.deque[int] | None,
    selector: selectors.BaseSelector,
) -> None:
    """Give the worker its next item, watching for what it sends, or tell
    it to stop."""
    if worker.index is not None or not worker.process.is_alive():
        return
    with contextlib.suppress(OSError):
        if pending:
            worker.index = pending.popleft()
            # Watched first: if the send fails, its end tells.
            selector.register(worker.conn, _READ, (worker, False))
            selector.register(worker.process.sentinel, _READ, (worker, True))
            worker.conn.send(worker.index)
            return
        worker.conn.send(None)


def _unwatch(worker: _Worker, selector: selectors.BaseSelector) -> None:
    for watched in (worker.conn, worker.process.sentinel):
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(watched)


#: :func:`_receive` read a message: the item's result is still to come.
_PENDING: t.Any = object()


def _receive(
    worker: _Worker,
    readable: bool,
    ended: bool,
    message: t.Callable[[int, t.Any], None] | None,
) -> t.Any:
    """Read what the worker sent, one message (given to ``message``) or its
    result; returns the result, :class:`Died`, or :data:`_PENDING`."""
    conn = worker.conn
    try:
        if readable or conn.poll():  # its end: anything it sent before?
            kind, payload = conn.recv()
            if kind == _RESULT:
                return payload
            if message is not None:
                message(t.cast(int, worker.index), payload)
            return _PENDING
    except (EOFError, OSError):
        ended = True
    if not ended:
        return _PENDING
    worker.process.join()
    return Died(
        f"its worker process ended without a result (exit code"
        f" {worker.process.exitcode})"
    )


def _wait(
    selector: selectors.BaseSelector,
) -> tuple[list[tuple[_Worker, bool, bool]], BaseException | None]:
    """Wait for a message, a result or a worker's end; signals are let in
    only here. Returns each worker with something to read, whether its pipe
    is readable, and whether it ended."""
    try:
        with _unblocked():
            keys = selector.select(timeout=1.0)
    except KeyboardInterrupt as interrupt:
        return [], interrupt
    found: dict[int, tuple[_Worker, bool, bool]] = {}
    for key, _ in keys:
        worker, is_sentinel = key.data
        _, readable, ended = found.get(id(worker), (worker, False, False))
        found[id(worker)] = (worker, readable or not is_sentinel, ended or is_sentinel)
    return list(found.values()), None


def _pass_on(interrupt: BaseException, busy: list[_Worker]) -> None:
    """Send the workers still running the signal that stopped this process.

    From a terminal they got it already (Ctrl-C reaches the process group);
    a worker acts on the first signal only.
    """
    code = getattr(interrupt, "exit_code", 130)
    signum = signal.SIGTERM if code == 143 else signal.SIGINT
    for worker in busy:
        if worker.process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.process.pid, signum)


@contextlib.contextmanager
def _blocked() -> t.Iterator[None]:
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def _unblocked() -> t.Iterator[None]:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)


# -- in the worker ---------------------------------------------------------------

#: The stop signals a worker received; it acts on the first one only.
_received: list[int] = []
#: In a worker: its end of the pipe to the parent.
_channel: Connection | None = None
#: A message is being written: the first stop signal waits for its end.
_writing = False
_stop_waiting = False


def _on_signal(signum: int, frame: object) -> None:
    global _stop_waiting
    _received.append(signum)
    if len(_received) == 1:
        if _writing:
            _stop_waiting = True
            return
        _stop()


def _stop() -> None:
    # Stop the server's statement, then unwind: the runner records the run
    # as interrupted and releases the lock.
    cancel_running()
    raise KeyboardInterrupt()


def received_signal() -> int | None:
    """In a worker: the first stop signal it received, if any."""
    return _received[0] if _received else None


def send(payload: t.Any) -> None:
    """In a worker: send ``payload`` (picklable, best small) to the parent's
    ``message`` callback, now. A stop signal arriving meanwhile acts once the
    whole message is written."""
    assert _channel is not None, "send() is for worker processes"
    _send(_channel, _MESSAGE, payload)


def _send(conn: Connection, kind: int, payload: t.Any) -> None:
    """Write one whole message (cheaper than blocking the signals)."""
    global _writing, _stop_waiting
    message = pickle.dumps((kind, payload), pickle.HIGHEST_PROTOCOL)
    _writing = True
    try:
        conn.send_bytes(message)
    finally:
        _writing = False
    if _stop_waiting:
        _stop_waiting = False
        _stop()


def _serve(
    conn: Connection,
    items: t.Sequence[T],
    run: t.Callable[[T], R],
    child_setup: t.Callable[[], None],
) -> None:
    """A worker's life: run the items the parent hands out, one at a time."""
    global _channel
    _channel = conn
    _received.clear()
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _on_signal)
    try:
        child_setup()
        while not _received:
            index = conn.recv()
            if index is None:
                break
            _send(conn, _RESULT, run(items[index]))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass
    finally:
        _channel = None
        conn.close()
