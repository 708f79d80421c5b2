"""`--processes N`: a supervisor starting N worker processes on one machine (like gunicorn's
`-w`), forwarding SIGTERM/SIGINT to them and starting again one that dies unexpectedly."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType

__all__ = ["supervise"]

log = logging.getLogger("actionrt.fleet")

_RESTART_PAUSE = 1.0  # a worker that dies at once is not restarted in a tight loop


def supervise(count: int, command: Callable[[int], Sequence[str]]) -> int:
    """Run `command(i)` for i in 0..count-1 until SIGTERM/SIGINT; 0 when every worker then
    exited 0."""
    children: dict[int, tuple[int, subprocess.Popen[bytes], float]] = {}
    stopping = False

    def start(index: int) -> None:
        process = subprocess.Popen(list(command(index)))
        children[process.pid] = (index, process, time.monotonic())

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for _, process, _ in children.values():
            process.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    codes: list[int] = []
    try:
        for index in range(count):
            start(index)
        while children:
            pid, status = os.wait()
            entry = children.pop(pid, None)
            if entry is None:
                continue
            index, _, started = entry
            code = os.waitstatus_to_exitcode(status)
            if stopping:
                codes.append(code)
                continue
            log.error("worker process %d (pid %d) exited with %d; starting it again", index, pid, code)
            if time.monotonic() - started < _RESTART_PAUSE:
                time.sleep(_RESTART_PAUSE)  # a crash loop: pace the restarts
            if not stopping:
                start(index)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if all(code == 0 for code in codes) else 1


def worker_command(arguments: Sequence[str]) -> list[str]:
    """The command line of one worker process: this interpreter running `actionrt` itself."""
    return [sys.executable, "-c", "from actionrt.cli import main; main()", *arguments]
