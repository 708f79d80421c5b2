"""The event loop actionrt's own processes run on: uvloop when installed, else asyncio's.

actionrt itself runs on any asyncio loop (nothing depends on the loop's concrete classes);
this only picks the faster one for the processes actionrt starts (`serve`, `worker`).
"""

from __future__ import annotations

import asyncio
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
