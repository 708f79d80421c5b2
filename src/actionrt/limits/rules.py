"""Capping and throttling rules in their published JSON shapes, and the URL patterns they match.

Capping (`endpointConfigs`): `url`, `methods`, `services.action|dataSource.rating.maxCallsCount`
/ `periodInMs`, optional `maxHttpConnections`. Throttling (`throttlingConfigs`): `urlPattern`,
`methods`, `maxThroughput`. Bad rules raise `actionrt.ValidationError` naming the field.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from actionrt.definition import is_valid_host
from actionrt.errors import Problem, ValidationError
from actionrt.loader import check_shape, read_document

__all__ = [
    "CappingRule",
    "Rating",
    "ServiceLimits",
    "Services",
    "ThrottlingRule",
    "UrlPattern",
    "parse_capping_rules",
    "parse_throttling_rules",
]

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
MAX_HTTP_CONNECTIONS: Final = 400
MIN_THROUGHPUT: Final = 200
MAX_THROUGHPUT: Final = 5000


@dataclass(frozen=True, slots=True)
class UrlPattern:
    """A rule's URL: exact scheme, host and port; `*` in the path matches any characters
    (slashes included). No path means every path on that host; `*` alone means every URL.
    The query string of a call is ignored."""

    text: str
    scheme: str | None  # None: the pattern is `*`, matching every URL
    host: str
    port: int
    path: re.Pattern[str] | None  # None: any path

    @classmethod
    def parse(cls, text: str) -> UrlPattern:
        text = text.strip()
        if text == "*":
            return cls(text, None, "", 0, None)
        try:
            parts = urlsplit(text)
        except ValueError as exc:
            raise ValueError(f"malformed URL pattern: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError("URL pattern must start with http:// or https://")
        if "*" in parts.netloc:
            raise ValueError("wildcards are allowed in the path only, not in host or port")
        if parts.query or parts.fragment or "?" in text:
            raise ValueError("a URL pattern has no query string or fragment")
        if "@" in parts.netloc:
            raise ValueError("a URL pattern has no user information")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise ValueError(f"malformed URL pattern: {exc}") from None
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise ValueError("URL pattern has no host")
        if not is_valid_host(host):
            raise ValueError(f"{host!r} is not a valid host name")
        path = None
        if parts.path not in ("", "/*"):
            path = re.compile(".*".join(re.escape(piece) for piece in parts.path.split("*")))
        return cls(text, scheme, host, port, path)

    @property
    def origin(self) -> tuple[str, str, int] | None:
        """(scheme, host, port) this pattern is bound to, or None for `*`."""
        return None if self.scheme is None else (self.scheme, self.host, self.port)

    def matches_path(self, path: str) -> bool:
        return self.path is None or self.path.fullmatch(path or "/") is not None


def _pattern_text(value: str) -> str:
    UrlPattern.parse(value)  # raises ValueError saying what is wrong with it
    return value


PatternText = Annotated[str, AfterValidator(_pattern_text)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Rating(_Model):
    """`maxCallsCount` calls in any window of `periodInMs` milliseconds."""

    max_calls_count: Annotated[StrictInt, Field(alias="maxCallsCount", gt=1)]
    period_in_ms: Annotated[StrictInt, Field(alias="periodInMs", gt=0)]


class ServiceLimits(_Model):
    """One service's capping: its rating and an optional connection limit (-1: the default)."""

    rating: Rating
    max_http_connections: Annotated[StrictInt | None, Field(alias="maxHttpConnections")] = None

    @model_validator(mode="before")
    @classmethod
    def _flat_rating(cls, data: Any) -> Any:
        # Also accept maxCallsCount / periodInMs written beside maxHttpConnections.
        if isinstance(data, Mapping) and "rating" not in data:
            flat = {k: data[k] for k in ("maxCallsCount", "periodInMs") if k in data}
            if flat:
                rest = {k: v for k, v in data.items() if k not in flat}
                return {**rest, "rating": flat}
        return data

    @field_validator("max_http_connections")
    @classmethod
    def _connections(cls, value: int | None) -> int | None:
        if value is None or value == -1:
            return None
        if not 1 <= value <= MAX_HTTP_CONNECTIONS:
            raise ValueError(f"must be between 1 and {MAX_HTTP_CONNECTIONS} (or -1 for the default)")
        return value


class Services(_Model):
    """Per service capping; actionrt applies `action`, or `dataSource` when only it is given."""

    action: ServiceLimits | None = None
    data_source: Annotated[ServiceLimits | None, Field(alias="dataSource")] = None

    @model_validator(mode="after")
    def _one_service(self) -> Services:
        if self.action is None and self.data_source is None:
            raise ValueError("no call rating defined: give services.action (or dataSource)")
        return self


def _methods(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError("must be a list of HTTP methods")
    if isinstance(value, Sequence):
        if not value:
            raise ValueError("must name at least one HTTP method")
        return [m.upper() if isinstance(m, str) else m for m in value]
    return value


class _Rule(BaseModel):
    # Unknown top-level keys (orgId, uid, status... as the published API returns them) are kept
    # out of the rule but not refused, so stored configurations load as they are.
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    name: str | None = None
    description: str | None = None
    methods: tuple[HttpMethod, ...]

    _check_methods = field_validator("methods", mode="before")(_methods)

    @functools.cached_property
    def uid(self) -> str:
        """A stable id from the rule's content: the same rule gets the same id (and the same
        shared counters in Redis) in every process."""
        canonical = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return self.name or self.pattern_text

    @property
    def pattern_text(self) -> str:
        raise NotImplementedError

    def pattern(self) -> UrlPattern:
        return UrlPattern.parse(self.pattern_text)


class CappingRule(_Rule):
    """An endpoint capping configuration; calls over the rating fail at once as `capped`."""

    url: PatternText
    services: Services

    @property
    def pattern_text(self) -> str:
        return self.url

    @property
    def limits(self) -> ServiceLimits:
        chosen = self.services.action or self.services.data_source
        assert chosen is not None  # checked by Services
        return chosen

    @property
    def max_calls(self) -> int:
        return self.limits.rating.max_calls_count

    @property
    def period_seconds(self) -> float:
        return self.limits.rating.period_in_ms / 1000

    @property
    def max_http_connections(self) -> int | None:
        return self.limits.max_http_connections


class ThrottlingRule(_Rule):
    """A throttling configuration: calls over `maxThroughput` per second queue in arrival order."""

    url_pattern: Annotated[PatternText, Field(alias="urlPattern")]
    max_throughput: Annotated[StrictInt, Field(alias="maxThroughput", ge=MIN_THROUGHPUT, le=MAX_THROUGHPUT)]

    @property
    def pattern_text(self) -> str:
        return self.url_pattern


RuleT = TypeVar("RuleT", CappingRule, ThrottlingRule)


def _problems(exc: PydanticValidationError, source: str, prefix: str) -> list[Problem]:
    problems = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(Problem(source, f"{prefix}{path}" if path else prefix.rstrip("."), message))
    return problems


def _parse_one(model: type[RuleT], data: object, source: str, prefix: str) -> RuleT:
    if isinstance(data, model):
        return data
    if not isinstance(data, Mapping):
        raise ValidationError.single(source, prefix.rstrip("."), "a rule must be a JSON object")
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationError(_problems(exc, source, prefix)) from None


def _parse_many(model: type[RuleT], data: object, source: str) -> list[RuleT]:
    if isinstance(data, str | Path):
        source, data = str(data), _read_rules_file(Path(data))
    single = isinstance(data, Mapping | model)
    if single:
        data = [data]
    if not isinstance(data, Iterable) or isinstance(data, str | bytes):
        raise ValidationError.single(source, "", "rules must be an object or a list of objects")
    items: Iterable[object] = data
    rules: list[RuleT] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        try:
            rules.append(_parse_one(model, item, source, "" if single else f"[{index}]."))
        except ValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ValidationError(problems)
    return rules


def _read_rules_file(path: Path) -> object:
    """A rules file read as action files are (`.json` as JSON, else YAML 1.2 with duplicate keys
    refused and aliases bounded); its problems name the file and the line."""
    document = read_document(path)
    check_shape(document, source=str(path))
    return document


def parse_capping_rules(data: object, source: str = "capping") -> list[CappingRule]:
    """Capping rules from a dict, a list of dicts, or a .json/.yaml file path."""
    return _parse_many(CappingRule, data, source)


def parse_throttling_rules(data: object, source: str = "throttling") -> list[ThrottlingRule]:
    """Throttling rules from a dict, a list of dicts, or a .json/.yaml file path."""
    return _parse_many(ThrottlingRule, data, source)
