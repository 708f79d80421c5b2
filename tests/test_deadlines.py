"""Deadlines: one timer per timeout value, with `asyncio.timeout`'s semantics."""

from __future__ import annotations

import asyncio

import pytest

from actionrt.deadlines import Deadlines

SHORT = 0.02  # seconds: long enough to start, short enough to pass quickly


async def test_a_block_past_its_deadline_is_cancelled_as_timeout_error() -> None:
    deadline = Deadlines().start(SHORT)
    with pytest.raises(TimeoutError), deadline:
        await asyncio.Event().wait()
    assert deadline.expired()
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_block_that_ends_in_time_is_never_cancelled_later() -> None:
    deadlines = Deadlines()
    with deadlines.start(SHORT) as ended:
        await asyncio.sleep(0)
    with pytest.raises(TimeoutError), deadlines.start(SHORT):  # the lane's timer passes `ended`
        await asyncio.Event().wait()
    assert not ended.expired()


async def test_calls_with_one_timeout_expire_each_in_turn() -> None:
    deadlines = Deadlines()
    outcomes: list[str] = []

    async def call(name: str, seconds: float, hold: asyncio.Event) -> None:
        try:
            with deadlines.start(seconds):
                await hold.wait()
            outcomes.append(f"{name} answered")
        except TimeoutError:
            outcomes.append(f"{name} timed out")

    answers = asyncio.Event()
    never = asyncio.Event()
    calls = [
        asyncio.create_task(call("a", SHORT, never)),
        asyncio.create_task(call("b", SHORT, answers)),
        asyncio.create_task(call("c", SHORT, never)),
        asyncio.create_task(call("d", SHORT * 2, never)),
    ]
    await asyncio.sleep(0)
    answers.set()
    await asyncio.gather(*calls)
    assert sorted(outcomes) == ["a timed out", "b answered", "c timed out", "d timed out"]


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    started = asyncio.Event()

    async def call() -> None:
        with Deadlines().start(10):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(call())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_ended_deadlines_do_not_pile_up_behind_a_long_one() -> None:
    deadlines = Deadlines()
    with deadlines.start(10):  # a slow call, running all along
        for _ in range(10_000):
            with deadlines.start(10):
                pass
        (lane,) = deadlines._lanes.values()
        running = sum(deadline._task is not None for deadline in lane._queue)
        assert running == 1 and len(lane._queue) <= 2 * running + 64 + 1


def test_one_deadlines_serves_calls_on_successive_loops() -> None:
    deadlines = Deadlines()

    async def timed_out() -> bool:
        try:
            with deadlines.start(SHORT):
                await asyncio.Event().wait()
        except TimeoutError:
            return True
        return False

    assert asyncio.run(timed_out())
    assert asyncio.run(timed_out())


async def test_a_deadline_needs_a_task() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines()
    errors: list[BaseException] = []

    def outside_a_task() -> None:
        try:
            deadlines.start(1)
        except RuntimeError as exc:
            errors.append(exc)

    loop.call_soon(outside_a_task)
    await asyncio.sleep(0)
    assert "running task" in str(errors[0])


async def test_idle_lanes_are_dropped_and_a_running_ones_lane_kept() -> None:
    deadlines = Deadlines()
    with deadlines.start(30) as running:  # its lane holds a running deadline all along
        for index in range(300):
            with deadlines.start(1 + index / 1000):
                pass
        assert len(deadlines._lanes) <= 256  # the ended ones' lanes went
        assert (asyncio.get_running_loop(), 30) in deadlines._lanes
    assert not running.expired()
