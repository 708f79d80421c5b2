"""Calls made by the service: invoke, Send test request, Check the authentication, and the
record of recent calls. One `Runtime` serves every action, with one transport, destination
policy, token context and limits."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actionrt.auth.base import AuthCheck
from actionrt.auth.context import AuthContext
from actionrt.definition import Action
from actionrt.errors import ValidationError
from actionrt.events import EventSink
from actionrt.guard import DestinationPolicy
from actionrt.http import DEFAULT_MAX_BODY, Transport
from actionrt.limits import Limits
from actionrt.observability import CallRecorder, last_call_id
from actionrt.payload import FieldSpec, FieldType, infer_fields
from actionrt.registry import Registry
from actionrt.results import InvocationResult
from actionrt.runtime import Runtime, default_transport
from actionrt.secrets import SecretResolver
from actionrt.service.catalog import Catalog
from actionrt.service.journal import CallJournal
from actionrt.service.store import CallRow, Store

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from actionrt.observability.timeline import Timeline

from actionrt.service.vault import (
    REFERENCE_KEY,
    document_secret_slots,
    provider_references,
    substitute,
    substitute_references,
)


@dataclass(slots=True)
class CallInput:
    """The values of one call: variable payload fields, headers, query, dynamic path. (Not
    frozen: a frozen dataclass sets each field through `object.__setattr__`, 10,500
    instructions a call on the invoke path against 4,200; callgrind.)"""

    params: Mapping[str, Any]
    headers: Mapping[str, Any]
    query: Mapping[str, Any]
    path: str | None = None
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class StructureProblem:
    path: str
    message: str


class Calls:
    """Runs calls against the catalog's current actions and records each in the call journal
    (and the `timeline` of the Monitoring page, when given).

    One `Runtime` serves every action: an action saved while the service runs replaces its
    engine there (calls already running finish with the definition they started with), so the
    transport, the limits and each capping rule's `maxHttpConnections` gate are shared by all
    the actions a rule matches.
    """

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        *,
        transport: Transport | None = None,
        limits: Limits | None = None,
        metrics: bool | CollectorRegistry = True,
        recorder: CallRecorder | None = None,
        event_sinks: Sequence[EventSink] = (),
        timeline: Timeline | None = None,
    ) -> None:
        self.catalog = catalog
        self.timeline = timeline
        self.metrics = metrics
        self.recorder = recorder
        self.event_sinks = tuple(event_sinks)
        self.store = store
        self.journal = CallJournal(store)
        self.policy = DestinationPolicy(catalog.allow_private_network)
        self.limits = limits if limits is not None else Limits()
        self.transport: Transport = (
            transport if transport is not None else default_transport(self.policy, DEFAULT_MAX_BODY)
        )
        self.secrets = SecretResolver(catalog.plugins.secret_providers)
        self.auth_context = AuthContext(
            self.secrets, allow_private_network=self.policy.allow_private_network, policy=self.policy
        )
        self.runtime = self._runtime_for(Registry(catalog.plugins, self.policy.allow_private_network))
        catalog.on_change(self._drop_removed)

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the shared pools (plugins see their startup hook) and start the journal."""
        await self.runtime.open()
        self.journal.start()

    async def aclose(self) -> None:
        """Write the pending call records; close the transport, token client and limits."""
        await self.journal.aclose()
        if self.runtime._opened:
            await self.runtime.aclose()
        else:
            await self.transport.aclose()
            await self.auth_context.aclose()
            await self.limits.aclose()

    def _runtime_for(self, registry: Registry) -> Runtime:
        return Runtime(
            registry,
            policy=self.policy,
            limits=self.limits,
            transport=self.transport,
            auth_context=self.auth_context,
            metrics=self.metrics,
            recorder=self.recorder,
            event_sinks=self.event_sinks,
        )

    def _single(self, action: Action) -> Registry:
        return Registry(self.catalog.plugins, self.policy.allow_private_network, {action.name: action}, {})

    def _drop_removed(self) -> None:
        current = self.catalog.registry.actions
        for name in [n for n in self.runtime.actions if n not in current]:
            self.runtime.remove_action(name)

    def loaded(self, name: str) -> Runtime:
        """The runtime with the named action's current definition loaded (NotFoundError if
        none; ValidationError when it can't run, such as a secret that is not set)."""
        action = self.catalog.action(name)
        if self.runtime.registry.actions.get(name) is not action:
            self.runtime.put_action(action)
        return self.runtime

    # -- calls ---------------------------------------------------------------------------------

    async def invoke(self, name: str, call: CallInput) -> InvocationResult:
        """One call of a stored action, as a journey makes it; recorded in recent calls."""
        return await self.invoke_loaded(self.loaded(name), name, call)

    async def invoke_loaded(self, runtime: Runtime, name: str, call: CallInput) -> InvocationResult:
        """`invoke` with the runtime `loaded(name)` gave (the hot path checks that first)."""
        result = await runtime.invoke(
            name, call.params, headers=call.headers, query=call.query, path=call.path, timeout=call.timeout
        )
        self._record(result, "invoke")
        return result

    async def test(
        self, name: str, call: CallInput, credentials: Mapping[str, str]
    ) -> tuple[InvocationResult, list[StructureProblem]]:
        """Send test request: a real call with typed-in values and re-entered credentials.

        The credentials replace the stored secrets for this call only: they go into a throwaway
        definition and a throwaway token context, and are never written anywhere.
        """
        action = self.temporary(name, credentials)
        context = self._fresh_auth_context()
        try:
            # A secret that is not set is a 422 at its field here (the console shows it there).
            runtime = Runtime(
                self._single(action),
                policy=self.policy,
                limits=self.limits,
                transport=self.transport,
                auth_context=context,
                require_secrets=True,
                metrics=self.metrics,
                recorder=self.recorder,
                event_sinks=self.event_sinks,
            )
            result = await runtime.invoke(
                action.name,
                call.params,
                headers=call.headers,
                query=call.query,
                path=call.path,
                timeout=call.timeout,
            )
        finally:
            await context.aclose()
        self._record(result, "test")
        structure = check_structure(action.response_fields, result.response) if result.ok else []
        return result, structure

    async def check_authentication(self, name: str, credentials: Mapping[str, str]) -> AuthCheck:
        """Check the authentication: only the token endpoint is called (or nothing, for static
        credentials); a fresh token context so a cached token can't hide a broken login."""
        action = self.temporary(name, credentials)
        scheme = self.catalog.plugins.schemes[action.definition.auth_type]
        context = self._fresh_auth_context()
        try:
            authenticator = scheme.build(action.auth, context)
            return await authenticator.check()
        finally:
            await context.aclose()

    def temporary(self, name: str, credentials: Mapping[str, str]) -> Action:
        """The action with re-entered credentials in place of its sealed secrets (not stored).

        `credentials` is keyed by a sealed secret's field path (`authentication.password`, as
        `document_secret_slots` names it) or, for a secret read from a provider such as the
        environment, by `secrets.NAME`; an unknown key is refused, a missing one keeps the
        stored value (or reference).
        """
        action = self.catalog.action(name)
        if not credentials:
            return action
        document = self.catalog.document(name)
        by_path = {slot.path: slot.secret_id for slot in document_secret_slots(document)}
        references = provider_references(document)
        for key in credentials:
            label = key.removeprefix(REFERENCE_KEY)
            if key.startswith(REFERENCE_KEY) and label not in references:
                raise ValidationError.single("", f"credentials.{key}", f"the action reads no secret {label}")
            if not key.startswith(REFERENCE_KEY) and key not in by_path:
                raise ValidationError.single(
                    "", f"credentials.{key}", "no stored secret at this path of the action"
                )
        sealed = {by_path[k]: v for k, v in credentials.items() if v and not k.startswith(REFERENCE_KEY)}
        read = {
            k.removeprefix(REFERENCE_KEY): v
            for k, v in credentials.items()
            if v and k.startswith(REFERENCE_KEY)
        }
        registry = self._single(action)
        return registry.parse(substitute_references(substitute(document, sealed), read), action.source)

    def _fresh_auth_context(self) -> AuthContext:
        return AuthContext(
            self.secrets, allow_private_network=self.policy.allow_private_network, policy=self.policy
        )

    def _record(self, result: InvocationResult, kind: str) -> None:
        # With a recorder every finished call gets an id (its details' key); without one there
        # are no details to link to.
        call_id = last_call_id() if self.recorder is not None else None
        # `tuple.__new__`: 2.4x as fast as the NamedTuple's own `__new__`, Python code (timeit).
        row = tuple.__new__(
            CallRow,
            (
                0,
                result.action,
                time.time(),
                kind,
                result.status,
                result.ok,
                result.http_status,
                result.attempts,
                result.elapsed,
                result.error,
                call_id,
            ),
        )
        self.journal.add(row)
        if self.timeline is not None:
            self.timeline.count(result)


def result_payload(result: InvocationResult) -> dict[str, Any]:
    """The JSON form of a result (the contract's field names, camelCase)."""
    return {
        "action": result.action,
        "status": result.status,
        "ok": result.ok,
        "httpStatus": result.http_status,
        "response": result.response,
        "errorResponse": result.error_response,
        "attempts": result.attempts,
        "sent": result.sent,
        "error": result.error,
        "errorClass": result.error_class,
        "errorCode": result.error_code,
        "elapsed": round(result.elapsed, 6),
        "journeyFields": result.as_journey_fields(),
    }


def check_structure(expected: FieldSpec | None, response: Any) -> list[StructureProblem]:
    """Where a response differs from the action's response example: missing fields, and fields
    whose type differs from the example's (reference.md §7)."""
    if expected is None:
        return []
    if not isinstance(response, dict):
        return [StructureProblem("", "the response is not a JSON object")]
    actual, _ = infer_fields(response, source="", where="response")
    problems = []
    for spec in expected.walk():
        if not spec.path:
            continue
        found = actual.find(spec.path)
        if found is None:
            if not _under_list(expected, spec.path):
                problems.append(StructureProblem(spec.path, "missing from the response"))
        elif not _same_type(spec.type, found.type):
            problems.append(
                StructureProblem(spec.path, f"is {found.type.value}, the example has {spec.type.value}")
            )
    return problems


def _under_list(root: FieldSpec, path: str) -> bool:
    parts = path.split(".")
    for i in range(1, len(parts)):
        prefix = root.find(".".join(parts[:i]))
        if prefix is not None and prefix.type is FieldType.LIST_OBJECT:
            return True
    return False


def _same_type(expected: FieldType, actual: FieldType) -> bool:
    if expected == actual:
        return True
    numbers = {FieldType.INTEGER, FieldType.DECIMAL}
    number_lists = {FieldType.LIST_INTEGER, FieldType.LIST_DECIMAL}
    return {expected, actual} <= numbers or {expected, actual} <= number_lists
