"""The exceptions actionrt raises, all under one root. A call's own failures (bad input, a
network error, a timeout) are results, not exceptions: `invoke` returns them in the
`InvocationResult`; what is raised is a wiring mistake or a refused operation.

ActionrtError
 ├── ValidationError            an action, journey or rule file (or dict) breaks the format's rules
 │    └── NameTakenError        the service: a create or rename to a name another action has
 ├── UnknownActionError         invoke() named an action the runtime does not have
 ├── EditRefusedError           an update the edit rules for actions in live journeys refuse
 │    └── JourneyEditRefusedError   a change to a live journey other than its name or status
 ├── PluginError                plugins failed to load (with `raise_for_failures`)
 ├── MissingSecretError         a referenced secret has no value
 ├── AuthenticationError        credentials could not be applied (token endpoint, token response)
 ├── ClientCertificateError     a client certificate or key cannot be loaded
 ├── InputError                 a value given for one call cannot be used
 ├── ExpressionError            a journey mapping cannot compile or evaluate
 ├── TransportError             no HTTP answer (actionrt.http)
 │    ├── ConnectError          the connection could not be made
 │    │    └── LookupFailedError the host's name did not resolve
 │    ├── NetworkError          the connection broke while sending or reading
 │    ├── BodyTooLargeError     the answer is larger than the cap
 │    ├── DestinationRefusedError   the destination policy refused the host or a redirect
 │    ├── ProxyRefusedError     the forward proxy refused the call (407, 403...)
 │    ├── TooManyRedirectsError     more redirects than allowed
 │    └── InvalidRequestError   a header would break the request's framing
 ├── LimitsUnavailableError     the shared limits store (Redis) did not answer in time
 ├── QueueUnavailableError      the fleet's queue (Redis) cannot be reached: nothing submitted
 ├── CallRefusedError           a submitted call invoke would refuse as bad input: not queued
 ├── SecretKeyError             the service has no usable encryption key for secrets
 ├── NotFoundError              the service: no action, journey or rule by that name
 ├── RuleStateError             the service: a rule change its state forbids
 ├── BodyError                  the service: a request body that is not usable JSON
 ├── FleetRequiredError         the service: an async call without `serve --redis` (409)
 └── StaleWriteError            the service: an If-Match naming another version (412)

Where a builtin meaning fits, the class also derives from it (`ValidationError` is a
`ValueError`, `UnknownActionError` a `KeyError`, `MissingSecretError` a `LookupError`), so
`except ActionrtError` catches everything actionrt raises on purpose.
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
