"""How actionrt's own long-running processes (`serve`, `worker`) run: on uvloop when it is
installed, else asyncio's loop, and with the garbage collector settled once they are built.

actionrt itself runs on any asyncio loop (nothing depends on the loop's concrete classes);
this only picks the faster one for the processes actionrt starts.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
from collections.abc import Callable

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def best_loop_name() -> str:
    """ "uvloop" when it is installed, else "asyncio" (uvicorn's `loop=` names)."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def best_loop_factory() -> LoopFactory:
    """A new-loop factory for `asyncio.Runner(loop_factory=...)`: uvloop's when installed."""
    if best_loop_name() == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def install_best_loop() -> str:
    """Make uvloop the policy's loop when it is installed; returns the loop's name.

    Call it before any loop starts (at the top of a command). `asyncio.run`, the sync
    facade's private loop and anything else asking the policy for a new loop get it then.
    """
    name = best_loop_name()
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return name


# The cyclic collector's youngest generation is collected once allocations outrun frees by
# this many objects (Python's default: 700). A process with many calls in flight keeps
# thousands of young objects alive, so at 700 it collects every few calls and walks them again
# each time: ~10,000 instructions per API invoke of `serve`, ~8,000 of them gone at 10,000
# (callgrind; 2,000 keeps most of it; bench/README.md "A task per connection, and the
# collector settled"); a worker's call 436,100 -> 409,800-415,200 (bench/README.md "The fleet worker
# logs as serve does"). Older generations keep Python's defaults.
YOUNG_THRESHOLD = 10_000


def tune_collector() -> None:
    """Settle the garbage collector for serving, once everything is imported and built:
    what exists now is frozen (never walked again by a collection; should some of it become
    cyclic garbage later, say an action's definition replaced by an edit, that one-time amount is
    not freed) and the youngest generation collected less often (`YOUNG_THRESHOLD`)."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
