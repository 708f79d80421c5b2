"""The journey file: a journey's id, status and action nodes with their mappings.

Journeys are loaded beside actions so that *Used in* works and edit rules know which actions
are pinned by live journeys. A journey file is marked `kind: journey`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JOURNEY_ID = r"^[A-Za-z0-9_.-]{1,64}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mappings(_Model):
    """How a node fills an action's variables: expressions over the journey context, or literals.

    `params` is keyed by the variable payload field's dotted path; `headers` and `query` by the
    variable header or query parameter name; `path` is the dynamic path.
    """

    params: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, Any] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict)
    path: str | None = None


class ActionNodeSpec(_Model):
    """An action node placed in a journey."""

    id: Annotated[str, Field(pattern=JOURNEY_ID)]
    action: str
    mappings: Mappings = Field(default_factory=Mappings)
    timeoutBranch: bool = False
    timeout: float | None = Field(default=None, ge=1, le=30)


class JourneyDefinition(_Model):
    """One journey as written in its file."""

    kind: Literal["journey"]
    id: Annotated[str, Field(pattern=JOURNEY_ID)]
    name: str = Field(min_length=1)
    status: Literal["draft", "live"] = "draft"
    nodes: list[ActionNodeSpec] = Field(default_factory=list)

    @property
    def actions(self) -> list[str]:
        """The names of the actions this journey's nodes use, once each, in order."""
        return list(dict.fromkeys(node.action for node in self.nodes))


def is_journey(raw: Any) -> bool:
    """Whether a parsed document is a journey file rather than an action file."""
    return isinstance(raw, dict) and raw.get("kind") == "journey"
