"""The worker pool's messages: sent whole before the item's result, handed
to the parent's callback in order; a stop signal waits for a message's end."""

from __future__ import annotations

import multiprocessing
import os
import signal
import typing as t

import pytest

from flask_migrate_ext.api import pool

pytestmark = pytest.mark.skipif(not pool.can_fork(), reason="needs os.fork")


def chatty(item: int) -> int:
    for n in range(item):
        pool.send((item, n, "x" * 1000))  # a few fill the pipe's buffer
    return item * 10


def test_messages_come_in_order_before_the_result() -> None:
    seen: list[tuple[str, int, t.Any]] = []

    def done(index: int, result: t.Any) -> bool:
        seen.append(("done", index, result))
        return True

    not_started, stopped = pool.run_parallel(
        2,
        [300, 5, 0, 200],
        chatty,
        child_setup=lambda: None,
        done=done,
        message=lambda index, payload: seen.append(("message", index, payload[:2])),
    )
    assert not_started == set() and stopped is None
    for index, item in enumerate([300, 5, 0, 200]):
        mine = [(kind, what) for kind, i, what in seen if i == index]
        assert mine == [
            *[("message", (item, n)) for n in range(item)],
            ("done", item * 10),
        ]


def dies_on_two(item: int) -> int:
    pool.send("before")
    if item == 2:
        os._exit(3)
    return item


def test_a_worker_that_dies_is_reported() -> None:
    outcomes: dict[int, t.Any] = {}
    messages: list[int] = []

    def done(index: int, outcome: t.Any) -> bool:
        outcomes[index] = outcome
        return True

    not_started, stopped = pool.run_parallel(
        2,
        [1, 2, 3, 4],
        dies_on_two,
        child_setup=lambda: None,
        done=done,
        message=lambda index, _: messages.append(index),
    )
    assert not_started == set() and stopped is None
    assert sorted(messages) == [0, 1, 2, 3]
    died = outcomes.pop(1)
    assert isinstance(died, pool.Died) and "exit code 3" in str(died)
    assert outcomes == {0: 1, 2: 3, 3: 4}


def test_a_stop_signal_waits_for_the_message_to_be_written() -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)

    class SignalledMidway:
        """Writes after a SIGINT arrived, as if it came during the write."""

        def send_bytes(self, data: bytes) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            writer.send_bytes(data)

    previous = signal.signal(signal.SIGINT, pool._on_signal)
    pool._received.clear()
    try:
        with pytest.raises(KeyboardInterrupt):
            pool._send(t.cast(t.Any, SignalledMidway()), pool._MESSAGE, "whole")
        assert pool.received_signal() == signal.SIGINT
    finally:
        signal.signal(signal.SIGINT, previous)
        pool._received.clear()
    assert reader.poll(1), "the message was not written"
    assert reader.recv() == (pool._MESSAGE, "whole")
    reader.close()
    writer.close()
