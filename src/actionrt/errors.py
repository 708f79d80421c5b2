"""The exceptions actionrt raises: only for wiring mistakes, never for what happens to one call.

ActionrtError
 ├── ValidationError       an action, journey or rule file (or dict) breaks the format's rules
 ├── UnknownActionError    invoke() named an action the runtime does not have
 └── EditRefusedError      an update the edit rules for actions in live journeys refuse
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class ActionrtError(Exception):
    """Base class of every exception actionrt raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: where (source file, dotted field path) and what."""

    source: str
    path: str
    message: str

    def __str__(self) -> str:
        parts = [p for p in (self.source, self.path) if p]
        return ": ".join([*parts, self.message])


class ValidationError(ActionrtError, ValueError):
    """Every problem found in one or more definitions, one per line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid definition")

    @classmethod
    def single(cls, source: str, path: str, message: str) -> ValidationError:
        return cls([Problem(source, path, message)])


class UnknownActionError(ActionrtError, KeyError):
    """invoke() named an action that is not loaded."""

    def __init__(self, name: str, known: Sequence[str] = ()) -> None:
        self.name = name
        hint = f" (known: {', '.join(sorted(known))})" if known else ""
        super().__init__(f"unknown action {name!r}{hint}")

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class RefusedChange:
    """One field an edit may not change, and the live journeys that pin it."""

    field: str
    journeys: tuple[str, ...]


class EditRefusedError(ActionrtError):
    """An update the edit rules refuse: names every field and the journeys that block it."""

    def __init__(self, action: str, refused: Sequence[RefusedChange]) -> None:
        self.action = action
        self.refused = list(refused)
        lines = [f"{r.field} (used by {', '.join(r.journeys)})" for r in self.refused]
        super().__init__(f"action {action!r} cannot change: " + "; ".join(lines))
