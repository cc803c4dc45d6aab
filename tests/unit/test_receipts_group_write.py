"""The webhook's group commit: requests waiting together share one write; a fault stays alone."""

from __future__ import annotations

import asyncio
import threading

import pytest

from dunning.receipts.group_write import GroupWriter


class Recorder:
    """A blocking write that records each call's items; the first call waits for ``release``."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def write(self, items: list[str]) -> list[str]:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if "bad" in items:
            raise ValueError("the ledger refuses 'bad'")
        return [item.upper() for item in items]


async def _while_first_write_blocks(
    recorder: Recorder, writer: GroupWriter[str, str], later: list[list[str]]
) -> list[list[str] | BaseException]:
    first = asyncio.create_task(writer.write(["first"]))
    await asyncio.to_thread(recorder.entered.wait, 10)
    waiting = [asyncio.create_task(writer.write(items)) for items in later]
    await asyncio.sleep(0)  # let them queue behind the write in flight
    recorder.release.set()
    assert await first == ["FIRST"]
    return await asyncio.gather(*waiting, return_exceptions=True)


def test_requests_that_wait_together_are_written_together() -> None:
    recorder = Recorder()
    writer: GroupWriter[str, str] = GroupWriter(recorder.write)
    results = asyncio.run(_while_first_write_blocks(recorder, writer, [["a", "b"], ["c"], ["d"]]))
    assert results == [["A", "B"], ["C"], ["D"]]
    assert recorder.calls == [["first"], ["a", "b", "c", "d"]]


def test_a_group_is_cut_at_max_items_between_requests() -> None:
    recorder = Recorder()
    writer: GroupWriter[str, str] = GroupWriter(recorder.write, max_items=3)
    results = asyncio.run(_while_first_write_blocks(recorder, writer, [["a", "b"], ["c", "d"]]))
    assert results == [["A", "B"], ["C", "D"]]
    assert recorder.calls == [["first"], ["a", "b"], ["c", "d"]]


def test_a_failing_request_fails_alone_and_the_others_are_stored() -> None:
    recorder = Recorder()
    writer: GroupWriter[str, str] = GroupWriter(recorder.write)
    results = asyncio.run(_while_first_write_blocks(recorder, writer, [["a"], ["bad"], ["c"]]))
    assert results[0] == ["A"]
    assert isinstance(results[1], ValueError)
    assert results[2] == ["C"]
    assert recorder.calls == [["first"], ["a", "bad", "c"], ["a"], ["bad"], ["c"]]


def test_a_lone_request_is_written_alone() -> None:
    recorder = Recorder()
    recorder.release.set()
    writer: GroupWriter[str, str] = GroupWriter(recorder.write)

    async def one_by_one() -> list[list[str]]:
        return [await writer.write(["x"]), await writer.write(["y"])]

    assert asyncio.run(one_by_one()) == [["X"], ["Y"]]
    assert recorder.calls == [["x"], ["y"]]


def test_max_items_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_items"):
        GroupWriter(Recorder().write, max_items=0)
