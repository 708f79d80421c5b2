"""The action node a journey engine places: mappings from journey data to variables, and branches.

A node's mappings are Jinja2 expressions over the journey context (`profile`, `event`, `journey`,
earlier `actions` results), compiled once when the node is built. `run(context)` invokes the action
for one customer, stores `as_journey_fields()` under `context["actions"][action]`, and returns the
branch the customer takes. A mapping that fails for one customer is that customer's
`internalError`, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from actionrt.expressions import CompiledExpression, ExpressionEnvironment, ExpressionError, Scope
from actionrt.journeys import ActionNodeSpec
from actionrt.results import InvocationResult

if TYPE_CHECKING:
    from actionrt.runtime import Runtime


class Branch(StrEnum):
    """Where a customer goes after the node."""

    SUCCESS = "success"
    TIMEOUT_OR_ERROR = "timeoutOrError"  # the node's timeout-or-error branch
    END = "end"  # a failure on a node without that branch: the customer's journey ends


class _Mapping:
    """One group of mappings (payload, headers or query), compiled once."""

    __slots__ = ("_compiled", "_literals")

    def __init__(self, env: ExpressionEnvironment, raw: Mapping[str, Any]) -> None:
        self._compiled: list[tuple[str, CompiledExpression]] = []
        self._literals: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, str):
                expression = env.compile(value)
                if expression.is_literal:
                    self._literals[key] = value
                else:
                    self._compiled.append((key, expression))
            else:
                self._literals[key] = value

    def evaluate(self, scope: Scope, group: str) -> dict[str, Any]:
        values = dict(self._literals)
        for key, expression in self._compiled:
            try:
                value = expression.evaluate(scope)
            except ExpressionError as exc:
                raise ExpressionError(f"mapping {group}.{key}: {exc}") from None
            if callable(value):
                # Jinja reads `cart.items` as the dict's items() method before the key "items".
                raise ExpressionError(
                    f"mapping {group}.{key}: gives a function, not a value "
                    f"(a key named like a dict method needs brackets: cart['items'])"
                )
            values[key] = value
        return values


class ActionNode:
    """An action placed in a journey, with its mappings and whether it has a timeout-or-error branch."""

    def __init__(
        self,
        runtime: Runtime,
        action: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        path: str | None = None,
        timeout_branch: bool = False,
        timeout: float | None = None,
        node_id: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.action = action
        self.node_id = node_id or action
        self.timeout_branch = timeout_branch
        self.timeout = timeout
        self._compiled = runtime.get_action(action)  # an unknown action is a wiring mistake: raise now
        env = self._environment = runtime.expressions
        self._params = _Mapping(env, params or {})
        self._headers = _Mapping(env, headers or {})
        self._query = _Mapping(env, query or {})
        self._path = env.compile(path) if path is not None else None

    @classmethod
    def from_spec(cls, runtime: Runtime, spec: ActionNodeSpec) -> ActionNode:
        """The node as a journey file describes it."""
        mappings = spec.mappings
        return cls(
            runtime,
            spec.action,
            params=mappings.params,
            headers=mappings.headers,
            query=mappings.query,
            path=mappings.path,
            timeout_branch=spec.timeoutBranch,
            timeout=spec.timeout,
            node_id=spec.id,
        )

    async def invoke(self, context: Mapping[str, Any]) -> InvocationResult:
        """Evaluate the mappings over `context` and invoke the action (never raises)."""
        scope = self._environment.scope(context)  # one evaluation context for all the mappings
        try:
            params = self._params.evaluate(scope, "params")
            headers = self._headers.evaluate(scope, "headers")
            query = self._query.evaluate(scope, "query")
            path = None if self._path is None else _path_value(self._path, scope)
        except ExpressionError as exc:
            result = self._mapping_failed(str(exc))
            if self.runtime.event_sinks:
                self.runtime.emit_event(result)
            return result
        return await self.runtime.invoke(
            self.action, params=params, headers=headers, query=query, path=path, timeout=self.timeout
        )

    async def run(self, context: MutableMapping[str, Any]) -> Branch:
        """Run the node for one customer: store the result's journey fields, return the branch."""
        branch, _ = await self.step(context)
        return branch

    async def step(self, context: MutableMapping[str, Any]) -> tuple[Branch, InvocationResult]:
        """`run`, also giving the result (for engines that report on every call)."""
        result = await self.invoke(context)
        context.setdefault("actions", {})[self.action] = result.as_journey_fields()
        if result.ok:
            return Branch.SUCCESS, result
        return (Branch.TIMEOUT_OR_ERROR if self.timeout_branch else Branch.END), result

    def _mapping_failed(self, message: str) -> InvocationResult:
        endpoint = self._compiled.definition.endpoint
        return InvocationResult.unsent(
            self.action, message, "mapping", endpoint=endpoint.url, method=endpoint.method
        )


def _path_value(expression: CompiledExpression, scope: Scope) -> str:
    """The dynamic path a mapping gives: a string, or an integer id written as one."""
    try:
        value = expression.evaluate(scope)
    except ExpressionError as exc:
        raise ExpressionError(f"mapping path: {exc}") from None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    what = "null" if value is None else f"a {type(value).__name__}"
    raise ExpressionError(f"mapping path: gives {what}, not a string")
