"""The console's pages: the actions list with the configuration pane, journeys, capping and
throttling rules, and the sign-in page used when the service has an API token."""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from actionrt.limits.rules import CappingRule, ThrottlingRule
from actionrt.payload import infer_fields
from actionrt.secrets import SECRET_REF
from actionrt.service.api import field_rows
from actionrt.service.catalog import NotFoundError
from actionrt.service.security import CSRF_FIELD, SESSION_COOKIE, SecurityPolicy
from actionrt.service.state import ServiceState
from actionrt.service.vault import REFERENCE_KEY

HERE = Path(__file__).parent
SCHEME_TITLES = {
    "none": "No authentication",
    "basic": "Basic",
    "apiKey": "API key",
    "customAuthorization": "Custom (customAuthorization)",
}
CAPPING_EXAMPLE = {
    "url": "https://api.example.com/v1/*",
    "methods": ["POST", "PUT"],
    "services": {"action": {"rating": {"maxCallsCount": 500, "periodInMs": 1000}}},
}
THROTTLING_EXAMPLE = {
    "urlPattern": "https://api.example.com/v1/*",
    "methods": ["POST"],
    "maxThroughput": 1000,
}


# What the Test section calls each stored credential a user may re-enter.
CREDENTIAL_LABELS = {
    "authentication.password": "Password",
    "authentication.value": "API key value",
    "authentication.token": "Token",
    "authentication.clientSecret": "Client secret",
    "authentication.privateKey": "Private key",
}


def credential_label(path: str, document: dict[str, Any]) -> str:
    """A name for the credential at `path` that a person recognises: `Password`, `Header
    x-api-key`, `Token request password`; else the path itself."""
    if path in CREDENTIAL_LABELS:
        return CREDENTIAL_LABELS[path]
    for prefix, title in (
        ("authentication.headers.", "Token request header "),
        ("authentication.body.bodyParams.", "Token request "),
    ):
        if path.startswith(prefix):
            return title + path.removeprefix(prefix)
    for key, title in (("headers", "Header "), ("queryParameters", "Query parameter ")):
        prefix = f"endpoint.{key}["
        if path.startswith(prefix) and path.endswith("].value"):
            index = path.removeprefix(prefix).removesuffix("].value")
            items = (document.get("endpoint") or {}).get(key) or []
            if index.isdigit() and int(index) < len(items) and isinstance(items[int(index)], dict):
                return title + str(items[int(index)].get("name", ""))
    return path


def reference_label(label: str) -> str:
    """`SMS_PASSWORD (environment)`, `api_key (file)`: a referenced secret as the Test names it."""
    provider, _, name = label.rpartition(":")
    return f"{name} ({provider or 'environment'})"


def reference(label: str) -> str:
    return "{{ secrets." + label + " }}"


def _pretty(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)


class Console:
    """The console's routes, bound to one service."""

    def __init__(self, state: ServiceState, policy: SecurityPolicy) -> None:
        self.state = state
        self.policy = policy
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        # A document embedded in a page keeps its keys' order: the pane sends read-only fields
        # back as they were (a live action's sample must not come back sorted).
        self.templates.env.policies["json.dumps_kwargs"] = {"sort_keys": False}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home, methods=["GET"]),
            Route("/console", self.home, methods=["GET"]),
            Route("/console/actions", self.actions, methods=["GET"]),
            Route("/console/actions/new", self.new_action, methods=["GET"]),
            Route("/console/actions/{name}", self.edit_action, methods=["GET"]),
            Route("/console/journeys", self.journeys, methods=["GET"]),
            Route("/console/journeys/new", self.new_journey, methods=["GET"]),
            Route("/console/journeys/{id}/edit", self.edit_journey, methods=["GET"]),
            Route("/console/limits", self.limits, methods=["GET"]),
            Route("/console/monitoring", self.monitoring, methods=["GET"]),
            Route("/console/login", self.login_page, methods=["GET"]),
            Route("/console/login", self.login, methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
        ]

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("section", "actions")
        context["csrf_token"] = request.state.csrf_token
        response = self.templates.TemplateResponse(request, name, context, status_code=status)
        # The pages show configuration: no caching, no framing by other sites.
        response.headers["cache-control"] = "no-store"
        response.headers["x-frame-options"] = "DENY"
        response.headers["content-security-policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        )
        response.headers["referrer-policy"] = "same-origin"
        return response

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/console/actions", 303)

    def _summaries(self) -> list[dict[str, Any]]:
        actions = sorted(self.state.catalog.registry.actions.values(), key=lambda a: a.name.lower())
        return [self.state.summary(a) for a in actions]

    async def actions(self, request: Request) -> Response:
        return self.render(request, "actions.html", actions=self._summaries(), pane=None)

    async def monitoring(self, request: Request) -> Response:
        names = sorted(self.state.catalog.registry.actions)
        fleet = self.state.queue_depth_source() is not None
        return self.render(request, "monitoring.html", section="monitoring", actions=names, fleet=fleet)

    async def new_action(self, request: Request) -> Response:
        return self.render(request, "actions.html", actions=self._summaries(), pane=self._pane(None))

    async def edit_action(self, request: Request) -> Response:
        name = request.path_params["name"]
        await self.state.calls.journal.flush()  # the pane counts every finished call
        try:
            pane = self._pane(name)
        except NotFoundError as exc:
            return self.render(request, "not_found.html", 404, message=str(exc))
        notice = f"{name} saved." if request.query_params.get("saved") else None
        return self.render(request, "actions.html", actions=self._summaries(), pane=pane, notice=notice)

    def _pane(self, name: str | None) -> dict[str, Any]:
        schemes = [
            {"type": t, "title": SCHEME_TITLES.get(t, f"{t} — {s.description}" if s.description else t)}
            for t, s in self.state.catalog.plugins.schemes.items()
        ]
        order = list(SCHEME_TITLES)
        schemes.sort(key=lambda s: (order.index(s["type"]) if s["type"] in order else len(order), s["type"]))
        if name is None:
            document: dict[str, Any] = {"endpoint": {"method": "POST"}, "authentication": {"type": "none"}}
            detail: dict[str, Any] = {
                "usedIn": [],
                "liveJourneys": [],
                "readOnly": False,
                "secrets": [],
                "references": [],
            }
            calls: dict[str, int] = {}
        else:
            action = self.state.catalog.action(name)
            detail = self.state.detail(action)
            document = detail["action"]
            calls = self.state.store.call_counts(name)
        auth = document.get("authentication") or {"type": "none"}
        request_spec = document.get("request") or {}
        rows: list[dict[str, Any]] = []
        if isinstance(request_spec.get("sample"), dict):
            root, problems = infer_fields(request_spec["sample"], source="", where="sample")
            rows = [] if problems else field_rows(root)
        return {
            "mode": "create" if name is None else "edit",
            "name": name,
            "doc": document,
            "detail": detail,
            "schemes": schemes,
            "read_only": detail["readOnly"],
            "live_journeys": detail["liveJourneys"],
            "used_in": detail["usedIn"],
            "secrets": detail["secrets"],
            "credentials": [
                # A sealed secret is named in the pane's words, never by its path.
                *({"key": p, "label": credential_label(p, document), "where": ""} for p in detail["secrets"]),
                *(
                    {"key": REFERENCE_KEY + label, "label": reference_label(label), "where": reference(label)}
                    for label in detail["references"]
                ),
            ],
            # Placeholders of the password inputs whose stored value is a provider's reference.
            "referenced": {
                key: auth[key]
                for key in ("password", "value")
                if isinstance(auth.get(key), str)
                and SECRET_REF.fullmatch(auth[key].strip())
                and key not in {p.removeprefix("authentication.") for p in detail["secrets"]}
            },
            "calls": calls,
            "auth_json": _pretty(auth) if auth.get("type") not in ("none", "basic", "apiKey") else "",
            "sample_json": _pretty(request_spec.get("sample")),
            "response_json": _pretty((document.get("response") or {}).get("sample")),
            "error_response_json": _pretty((document.get("errorResponse") or {}).get("sample")),
            "meta": {
                "fieldRows": rows,
                "readOnly": detail["readOnly"],
                "secrets": detail["secrets"],
                # Each scheme's form is generated in the page from its configuration's schema.
                "authSchemas": {
                    t: s.config_model.model_json_schema()
                    for t, s in self.state.catalog.plugins.schemes.items()
                },
            },
        }

    async def journeys(self, request: Request) -> Response:
        action = request.query_params.get("action")
        registry = self.state.catalog.registry
        chosen = (
            registry.used_in(action) if action else sorted(registry.journeys.values(), key=lambda j: j.id)
        )
        journeys = [
            {
                "id": j.id,
                "name": j.definition.name,
                "status": j.definition.status,
                "actions": j.definition.actions,
            }
            for j in chosen
        ]
        return self.render(request, "journeys.html", section="journeys", journeys=journeys, action=action)

    async def new_journey(self, request: Request) -> Response:
        """The journey editor: each action with the variables a node maps."""
        return self.journey_editor(request, None)

    async def edit_journey(self, request: Request) -> Response:
        """The journey editor loaded with a stored journey (saved with PUT /journeys/{id})."""
        try:
            journey = self.state.catalog.journey(request.path_params["id"])
        except NotFoundError as exc:
            return self.render(request, "not_found.html", 404, message=str(exc))
        return self.journey_editor(request, journey.definition.model_dump(mode="json"))

    def journey_editor(self, request: Request, journey: dict[str, Any] | None) -> Response:
        actions = [
            {
                "name": action.name,
                "description": action.definition.description or "",
                "variables": self.state.detail(action)["variables"],
            }
            for action in sorted(self.state.catalog.registry.actions.values(), key=lambda a: a.name)
        ]
        return self.render(
            request, "journey_editor.html", section="journeys", actions=actions, journey=journey
        )

    async def limits(self, request: Request) -> Response:
        rules = []
        for row in self.state.rules.list():
            doc = row.document
            if row.kind == "capping":
                service = doc["services"].get("action") or doc["services"].get("dataSource") or {}
                rating = service.get("rating", {})
                limit = f"{rating.get('maxCallsCount')} calls / {rating.get('periodInMs')} ms"
                pattern = doc["url"]
            else:
                limit = f"{doc['maxThroughput']} calls/s (queued)"
                pattern = doc["urlPattern"]
            rules.append(
                {
                    "uid": row.uid,
                    "kind": row.kind,
                    "pattern": pattern,
                    "methods": doc.get("methods", []),
                    "limit": limit,
                    "deployed": row.deployed,
                }
            )
        return self.render(
            request,
            "limits.html",
            section="limits",
            rules=rules,
            examples={"capping": CAPPING_EXAMPLE, "throttling": THROTTLING_EXAMPLE},
            schemas={
                "capping": CappingRule.model_json_schema(by_alias=True),
                "throttling": ThrottlingRule.model_json_schema(by_alias=True),
            },
            documents={row.uid: {"kind": row.kind, "rule": row.document} for row in self.state.rules.list()},
        )

    async def login_page(self, request: Request) -> Response:
        if self.policy.api_token is None:
            return RedirectResponse("/console/actions", 303)
        return self.render(request, "login.html", section="", error=None)

    async def login(self, request: Request) -> Response:
        if self.policy.api_token is None:
            return RedirectResponse("/console/actions", 303)
        form = await request.form()
        field = str(form.get(CSRF_FIELD, ""))
        if not field or not hmac.compare_digest(field, request.state.csrf_token):
            return self.render(request, "login.html", 403, section="", error="The form expired: try again.")
        if not self.policy.token_matches(str(form.get("token", ""))):
            return self.render(request, "login.html", 401, section="", error="Wrong token.")
        response = RedirectResponse("/console/actions", 303)
        response.set_cookie(
            SESSION_COOKIE, self.policy.session_value(), httponly=True, samesite="strict", path="/"
        )
        return response
