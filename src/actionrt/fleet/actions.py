"""The actions a worker serves: loaded file by file, so one broken file costs only its own
action (whose calls end `internalError` naming the reason), and swapped whole on an edit while
calls already running finish with the definitions they started with."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from actionrt.errors import Problem, ValidationError
from actionrt.loader import iter_definition_files, read_document
from actionrt.plugins import Plugins
from actionrt.registry import Registry
from actionrt.runtime import Runtime

__all__ = ["ActionSet", "LoadedActions", "load_leniently"]

log = logging.getLogger("actionrt.fleet")

_MAX_PASSES = 5


@dataclass(eq=False)
class LoadedActions:
    """One generation of loaded actions: the runtime serving the valid ones, the reasons of the
    broken ones (by action name), and how many calls still run on it."""

    runtime: Runtime
    broken: dict[str, str]
    running: int = 0
    retired: bool = False


def load_leniently(
    paths: Iterable[str | Path],
    plugins: Plugins,
    *,
    allow_private_network: bool,
    build: Callable[[Registry], Runtime],
) -> LoadedActions:
    """Load every valid action under `paths`; each file that fails is reported and left out.

    `ValidationError` only for problems that name no file (a path that does not exist).
    """
    files = list(iter_definition_files(list(paths)))
    broken: dict[str, str] = {}
    left_out: set[str] = set()
    for _ in range(_MAX_PASSES):
        kept = [f for f in files if str(f) not in left_out]
        try:
            registry = Registry.from_path(kept, plugins=plugins, allow_private_network=allow_private_network)
            return LoadedActions(build(registry), broken)
        except ValidationError as exc:
            failing = _by_source(exc.problems)
            if not failing.keys() - left_out or "" in failing:
                raise
            for source, problems in failing.items():
                name = _action_name(source)
                reason = "; ".join(str(p) for p in problems)
                broken[name] = f"action {name!r} failed to load: {reason}"
                log.error("cannot load %s: %s", source, reason)
            left_out |= failing.keys()
    raise ValidationError([Problem("", "", "actions kept failing to load")])


def _by_source(problems: Iterable[Problem]) -> dict[str, list[Problem]]:
    grouped: dict[str, list[Problem]] = {}
    for problem in problems:
        grouped.setdefault(problem.source, []).append(problem)
    return grouped


def _action_name(source: str) -> str:
    """The name a broken file gives its action, when it can be read; else the file's stem."""
    try:
        document = read_document(Path(source))
    except (ValidationError, OSError):
        document = None
    name = document.get("name") if isinstance(document, dict) else None
    return name if isinstance(name, str) and name else Path(source).stem


class ActionSet:
    """The current generation of actions; `swap` installs a new one and closes the old one
    once its last running call is done."""

    def __init__(self, current: LoadedActions) -> None:
        self.current = current

    def enter(self) -> LoadedActions:
        """The generation a call runs on, held until `leave`."""
        generation = self.current
        generation.running += 1
        return generation

    async def leave(self, generation: LoadedActions) -> None:
        generation.running -= 1
        if generation.retired and generation.running == 0:
            await generation.runtime.aclose()

    async def swap(self, generation: LoadedActions) -> None:
        await generation.runtime.open()
        old, self.current = self.current, generation
        old.retired = True
        if old.running == 0:
            await old.runtime.aclose()

    async def aclose(self) -> None:
        await self.current.runtime.aclose()
