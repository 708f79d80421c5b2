"""What one running service holds: the store, the catalog of actions and journeys, the rules,
the call layer, and the settings the pages and routes read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actionrt.definition import Action
from actionrt.registry import EDITABLE_WHEN_LIVE
from actionrt.service.calls import Calls
from actionrt.service.catalog import Catalog
from actionrt.service.rules import Rules
from actionrt.service.store import Store
from actionrt.service.vault import document_secret_slots, provider_references

if TYPE_CHECKING:
    from actionrt.service.queue_watch import QueueDepthSource


@dataclass
class ServiceState:
    store: Store
    catalog: Catalog
    rules: Rules
    calls: Calls
    api_token_required: bool
    # With a fleet: reads the queue's depth (such as `Queue.depth`) for the Monitoring page.
    queue_depth: QueueDepthSource | None = None

    def queue_depth_source(self) -> QueueDepthSource | None:
        """How the Monitoring page reads the fleet queue's depth: `queue_depth` when given, else
        the depth of the queue `serve --redis` invokes through; None without a fleet."""
        if self.queue_depth is not None:
            return self.queue_depth
        queue = getattr(self, "queue", None)  # the `serve --redis` queue, where that option is
        if queue is None:
            return None
        depth: QueueDepthSource = queue.depth
        return depth

    def summary(self, action: Action) -> dict[str, Any]:
        """One row of the actions list."""
        definition = action.definition
        users = self.catalog.registry.used_in(action.name)
        return {
            "name": action.name,
            "description": definition.description,
            "method": definition.endpoint.method,
            "host": action.host,
            "url": definition.endpoint.url,
            "authentication": definition.auth_type,
            "usedIn": len(users),
            "live": any(j.live for j in users),
        }

    def detail(self, action: Action) -> dict[str, Any]:
        """An action as the API shows it: the stored document (secrets as references only),
        Used in, and which fields are read-only because a live journey uses it."""
        document = self.catalog.document(action.name)
        users = self.catalog.registry.used_in(action.name)
        live = [j.id for j in users if j.live]
        return {
            "action": document,
            "usedIn": [journey_summary(j.id, j.definition.name, j.definition.status) for j in users],
            "liveJourneys": live,
            "editableWhenLive": sorted(EDITABLE_WHEN_LIVE),
            "readOnly": bool(live),
            "secrets": [slot.path for slot in document_secret_slots(document)],
            "references": provider_references(document),
            "variables": {
                "params": {
                    path: {"label": v.label, "type": v.type.value, "optional": v.optional}
                    for path, v in action.variables.items()
                },
                "headers": [
                    {"name": h.name, "label": h.label, "optional": h.optional}
                    for h in action.definition.endpoint.headers
                    if h.variable
                ],
                "query": [
                    {"name": q.name, "label": q.label, "optional": q.optional}
                    for q in action.definition.endpoint.queryParameters
                    if q.variable
                ],
                "path": action.definition.endpoint.dynamicPath,
            },
        }


def journey_summary(journey_id: str, name: str, status: str) -> dict[str, Any]:
    return {"id": journey_id, "name": name, "status": status}
