"""The registry: actions and journeys by name, *Used in*, and the edit rules for actions in use.

`Registry.from_path("actions/")` loads a file or a directory tree; every problem in every file is
reported at once as one ValidationError. Updates go through `update_action`, which refuses edits
that a live journey forbids and renames the references of journeys.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from actionrt.definition import Action, parse_action, pydantic_problems
from actionrt.errors import EditRefusedError, Problem, RefusedChange, UnknownActionError, ValidationError
from actionrt.expressions import ExpressionEnvironment, ExpressionError
from actionrt.journeys import JourneyDefinition, Mappings, is_journey
from actionrt.loader import check_shape, collector_paused, iter_definition_files, read_document
from actionrt.plugins import Plugins

# What stays editable once an action is used in a live journey (reference.md §1).
EDITABLE_WHEN_LIVE = frozenset({"name", "description", "endpoint.url", "authentication"})


class JourneyEditRefusedError(EditRefusedError):
    """A change to a live journey other than its name or status (stop it first)."""

    def __init__(self, journey_id: str, refused: list[RefusedChange]) -> None:
        super().__init__(journey_id, refused)
        fields = ", ".join(r.field for r in refused)
        self.args = (f"journey {journey_id!r} is live: stop it to change {fields}",)


@dataclass
class Journey:
    """A loaded journey and the file it came from."""

    definition: JourneyDefinition
    source: str

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def live(self) -> bool:
        return self.definition.status == "live"


@dataclass
class Registry:
    """Actions by name and journeys by id, checked against each other."""

    plugins: Plugins
    allow_private_network: bool = False
    actions: dict[str, Action] = field(default_factory=dict)
    journeys: dict[str, Journey] = field(default_factory=dict)

    @classmethod
    def from_path(
        cls,
        paths: str | Path | Iterable[str | Path],
        *,
        plugins: Plugins | None = None,
        allow_private_network: bool = False,
    ) -> Registry:
        """Load action and journey files; raise ValidationError listing every problem."""
        with collector_paused():
            return cls._load(paths, plugins, allow_private_network)

    @classmethod
    def _load(
        cls, paths: str | Path | Iterable[str | Path], plugins: Plugins | None, allow_private_network: bool
    ) -> Registry:
        registry = cls(plugins or Plugins.load(), allow_private_network)
        if isinstance(paths, str | Path):
            paths = [paths]
        problems: list[Problem] = []
        documents: list[tuple[str, Any]] = []
        try:
            files = list(iter_definition_files(paths))
        except ValidationError as exc:
            raise ValidationError(exc.problems) from None
        for path in files:
            try:
                documents.append((str(path), read_document(path)))
            except ValidationError as exc:
                problems += exc.problems
        for source, raw in documents:
            try:
                if is_journey(raw):
                    registry._put_journey(raw, source)
                else:
                    registry._put_action(raw, source)
            except ValidationError as exc:
                problems += exc.problems
        problems += registry.check_journeys()
        if problems:
            raise ValidationError(problems)
        return registry

    # -- reading -----------------------------------------------------------------------------

    def get(self, name: str) -> Action | None:
        return self.actions.get(name)

    def used_in(self, name: str) -> list[Journey]:
        """The journeys whose nodes use the action, in id order."""
        return [j for _, j in sorted(self.journeys.items()) if name in j.definition.actions]

    def live_journeys(self, name: str) -> list[Journey]:
        return [j for j in self.used_in(name) if j.live]

    # -- loading -----------------------------------------------------------------------------

    def parse(self, raw: Any, source: str) -> Action:
        """Validate one action dict (connectors expanded) without adding it."""
        if isinstance(raw, dict) and isinstance(raw.get("connector"), str):
            raw = self._expand_connector(raw, source)
        return parse_action(
            raw,
            source=source,
            plugins=self.plugins,
            allow_private_network=self.allow_private_network,
        )

    def _expand_connector(self, raw: dict[str, Any], source: str) -> dict[str, Any]:
        name = raw["connector"]
        connector = self.plugins.connectors.get(name)
        if connector is None:
            known = ", ".join(sorted(self.plugins.connectors)) or "none installed"
            raise ValidationError.single(source, "connector", f"unknown connector {name!r} (known: {known})")
        try:
            expanded = connector.expand(dict(raw))
        except ValidationError as exc:
            raise ValidationError(Problem(source, p.path, p.message) for p in exc.problems) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationError.single(source, "connector", f"{name}: {exc}") from None
        return {**expanded, "connector": name}

    def _put_action(self, raw: Any, source: str) -> Action:
        action = self.parse(raw, source)
        other = self.actions.get(action.name)
        if other is not None:
            raise ValidationError.single(
                source, "name", f"{action.name!r} is already defined in {other.source}"
            )
        self.actions[action.name] = action
        return action

    def _put_journey(self, raw: Any, source: str) -> Journey:
        check_shape(raw, source=source)
        try:
            definition = JourneyDefinition.model_validate(raw)
        except pydantic.ValidationError as exc:
            raise ValidationError(pydantic_problems(exc, source)) from None
        other = self.journeys.get(definition.id)
        if other is not None:
            raise ValidationError.single(
                source, "id", f"{definition.id!r} is already defined in {other.source}"
            )
        journey = Journey(definition, source)
        self.journeys[journey.id] = journey
        return journey

    def check_journeys(self, journeys: Iterable[Journey] | None = None) -> list[Problem]:
        """Each node names a loaded action, maps exactly that action's variables, and each
        mapping compiles (a broken expression is found here, not for the first customer)."""
        problems = []
        for journey in journeys if journeys is not None else self.journeys.values():
            for i, node in enumerate(journey.definition.nodes):
                where = f"nodes[{i}]"
                problems += self._compile_mappings(journey.source, where, node.mappings)
                action = self.actions.get(node.action)
                if action is None:
                    problems.append(
                        Problem(journey.source, f"{where}.action", f"unknown action {node.action!r}")
                    )
                    continue
                problems += _check_mappings(journey.source, where, node.mappings, action)
        return problems

    @functools.cached_property
    def _expressions(self) -> ExpressionEnvironment:
        # The journey engine's environment: the same plugin functions and filters.
        return ExpressionEnvironment(self.plugins.functions, self.plugins.filters)

    def _compile_mappings(self, source: str, where: str, mappings: Mappings) -> list[Problem]:
        expressions: list[tuple[str, str]] = [
            (f"{where}.mappings.{group}.{key}", value)
            for group in ("params", "headers", "query")
            for key, value in getattr(mappings, group).items()
            if isinstance(value, str)
        ]
        if mappings.path is not None:
            expressions.append((f"{where}.mappings.path", mappings.path))
        problems = []
        for path, expression in expressions:
            try:
                self._expressions.compile(expression)
            except ExpressionError as exc:
                problems.append(Problem(source, path, str(exc)))
        return problems

    # -- editing -----------------------------------------------------------------------------

    def add_action(self, raw: Mapping[str, Any], source: str = "<api>") -> Action:
        """Validate and add a new action; its name must be free."""
        return self._put_action(dict(raw), source)

    def add_journey(self, raw: Mapping[str, Any], source: str = "<api>") -> Journey:
        """Validate and add a journey; its nodes must name loaded actions."""
        journey = self._put_journey({"kind": "journey", **raw}, source)
        problems = self.check_journeys([journey])
        if problems:
            del self.journeys[journey.id]
            raise ValidationError(problems)
        return journey

    def update_action(self, name: str, raw: Mapping[str, Any], source: str | None = None) -> Action:
        """Replace an action, under the edit rules; a rename updates the journeys' references."""
        current = self.actions.get(name)
        if current is None:
            raise UnknownActionError(name, list(self.actions))
        updated = self.parse(dict(raw), source or current.source)
        refused = self.refused_changes(current, updated)
        if refused:
            raise EditRefusedError(name, refused)
        if updated.name != name and updated.name in self.actions:
            raise ValidationError.single(
                updated.source,
                "name",
                f"{updated.name!r} is already defined in {self.actions[updated.name].source}",
            )
        if updated.name != name:
            for journey in self.used_in(name):
                journey.definition = _rename_in_journey(journey.definition, name, updated.name)
        self.actions = {
            (updated.name if key == name else key): (updated if key == name else value)
            for key, value in self.actions.items()
        }
        return updated

    def remove_action(self, name: str) -> Action:
        """Remove an action that no journey uses."""
        if name not in self.actions:
            raise UnknownActionError(name, list(self.actions))
        users = self.used_in(name)
        if users:
            raise EditRefusedError(name, [RefusedChange("delete", tuple(j.id for j in users))])
        return self.actions.pop(name)

    def update_journey(self, journey_id: str, raw: Mapping[str, Any], source: str | None = None) -> Journey:
        """Replace a journey (same id). A live journey keeps its nodes: only its name and status
        (stopping it: `draft`) may change."""
        current = self.journeys.get(journey_id)
        if current is None:
            raise KeyError(journey_id)
        document = {"kind": "journey", **raw}
        if document.get("id") != journey_id:
            raise ValidationError.single(source or current.source, "id", f"must stay {journey_id!r}")
        try:
            definition = JourneyDefinition.model_validate(document)
        except pydantic.ValidationError as exc:
            raise ValidationError(pydantic_problems(exc, source or current.source)) from None
        if current.live:
            before = current.definition.model_dump(mode="json", exclude={"name", "status"})
            after = definition.model_dump(mode="json", exclude={"name", "status"})
            changed = [key for key in sorted(before) if before[key] != after.get(key)]
            if changed:
                raise JourneyEditRefusedError(
                    journey_id, [RefusedChange(key, (journey_id,)) for key in changed]
                )
        updated = Journey(definition, source or current.source)
        self.journeys[journey_id] = updated
        problems = self.check_journeys([updated])
        if problems:
            self.journeys[journey_id] = current
            raise ValidationError(problems)
        return updated

    def remove_journey(self, journey_id: str) -> Journey:
        """Remove a journey that is not live (stop it first)."""
        current = self.journeys.get(journey_id)
        if current is None:
            raise KeyError(journey_id)
        if current.live:
            raise JourneyEditRefusedError(journey_id, [RefusedChange("delete", (journey_id,))])
        return self.journeys.pop(journey_id)

    def refused_changes(self, current: Action, updated: Action) -> list[RefusedChange]:
        """The fields an update changes that the journeys using the action forbid."""
        live = tuple(j.id for j in self.live_journeys(current.name))
        if not live:
            return []
        changed = _changed_fields(
            current.definition.model_dump(mode="json"), updated.definition.model_dump(mode="json")
        )
        return [RefusedChange(path, live) for path in changed if path not in EDITABLE_WHEN_LIVE]


def _changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Top-level fields (and endpoint sub-fields) that differ between two dumps."""
    changed = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if key == "endpoint" and isinstance(old, dict) and isinstance(new, dict):
            changed += [
                f"endpoint.{sub}" for sub in sorted(set(old) | set(new)) if old.get(sub) != new.get(sub)
            ]
        elif old != new:
            changed.append(key)
    return changed


def _rename_in_journey(definition: JourneyDefinition, old: str, new: str) -> JourneyDefinition:
    nodes = [
        node.model_copy(update={"action": new}) if node.action == old else node for node in definition.nodes
    ]
    return definition.model_copy(update={"nodes": nodes})


def _check_mappings(source: str, where: str, mappings: Any, action: Action) -> list[Problem]:
    problems = []
    endpoint = action.definition.endpoint
    groups = {
        "params": {p: not v.optional for p, v in action.variables.items()},
        "headers": {h.name: not h.optional for h in endpoint.headers if h.variable},
        "query": {q.name: not q.optional for q in endpoint.queryParameters if q.variable},
    }
    for group, variables in groups.items():
        mapped = getattr(mappings, group)
        for key in mapped:
            if key not in variables:
                problems.append(
                    Problem(source, f"{where}.mappings.{group}.{key}", f"{action.name} has no such variable")
                )
        for key, required in variables.items():
            if required and key not in mapped:
                problems.append(
                    Problem(source, f"{where}.mappings.{group}.{key}", "required variable is not mapped")
                )
    if endpoint.dynamicPath and mappings.path is None:
        problems.append(Problem(source, f"{where}.mappings.path", f"{action.name} needs a dynamic path"))
    if not endpoint.dynamicPath and mappings.path is not None:
        problems.append(Problem(source, f"{where}.mappings.path", f"{action.name} has no dynamic path"))
    return problems
