"""The action node: mappings compiled once, evaluated per customer, branches and stored fields."""

from __future__ import annotations

import json

import httpx
import pytest

from actionrt.journey import ActionNode, Branch

ACTION = {
    "name": "notify",
    "endpoint": {
        "url": "https://api.example.com/v1/customers/",
        "method": "POST",
        "dynamicPath": True,
        "headers": [{"name": "x-request-id", "variable": True, "label": "Request id"}],
        "queryParameters": [{"name": "locale", "variable": True, "label": "Locale", "optional": True}],
    },
    "request": {
        "sample": {"email": "a@example.com", "points": 1, "tags": ["a"]},
        "variables": {
            "email": {"label": "Email"},
            "points": {"label": "Points"},
            "tags": {"label": "Tags", "optional": True},
        },
    },
    "response": {"sample": {"status": "gold"}},
    "retry": {"count": 0},
}

STATUS_URL = "https://api.example.com/v1/customers/c-1/status"
CONTEXT = {
    "profile": {"id": "c-1", "email": "ada@example.com", "locale": "fr"},
    "event": {"points": 42, "tags": ["vip", "new"]},
    "journey": {"id": "welcome"},
}


@pytest.fixture
async def runtime(actionrt_runtime_factory, actionrt_respx):
    async with actionrt_runtime_factory(ACTION) as rt:
        yield rt


def node(runtime, **overrides):
    mappings = {
        "params": {
            "email": "{{ profile.email }}",
            "points": "{{ event.points }}",
            "tags": "{{ event.tags }}",
        },
        "headers": {"x-request-id": "req-{{ profile.id }}"},
        "query": {"locale": "{{ profile.locale }}"},
        "path": "{{ profile.id }}/status",
    }
    mappings.update(overrides)
    return ActionNode(runtime, "notify", **mappings, timeout_branch=True)


async def test_mappings_fill_payload_headers_query_and_path_keeping_types(runtime, actionrt_respx):
    router = actionrt_respx
    route = router.post(STATUS_URL, params={"locale": "fr"}).mock(
        return_value=httpx.Response(200, json={"status": "gold"})
    )
    context = {**CONTEXT}
    branch = await node(runtime).run(context)
    assert branch is Branch.SUCCESS
    sent = route.calls.last.request
    assert json.loads(sent.content) == {"email": "ada@example.com", "points": 42, "tags": ["vip", "new"]}
    assert sent.headers["x-request-id"] == "req-c-1"
    assert context["actions"]["notify"] == {
        "status": "gold",
        "jo_status_code": "http_200",
        "errorResponse": None,
    }


async def test_a_failure_takes_the_timeout_or_error_branch_or_ends(runtime, actionrt_respx):
    router = actionrt_respx
    router.post(url__startswith=STATUS_URL).mock(
        return_value=httpx.Response(404, json={"error": "no such customer"})
    )
    context = {**CONTEXT}
    assert await node(runtime).run(context) is Branch.TIMEOUT_OR_ERROR
    assert context["actions"]["notify"]["errorResponse"] == {"error": "no such customer"}
    assert context["actions"]["notify"]["jo_status_code"] == "http_404"
    without_branch = ActionNode(
        runtime,
        "notify",
        params={"email": "x@example.com", "points": 1},
        headers={"x-request-id": "r"},
        path="c-1/status",
    )
    assert await without_branch.run({}) is Branch.END


async def test_a_broken_expression_is_that_customers_internal_error(runtime, actionrt_respx):
    router = actionrt_respx
    route = router.post(url__startswith="https://api.example.com/")
    context = {"profile": {"id": "c-2", "locale": "fr"}, "event": {"points": 1}}  # no email
    branch, result = await node(runtime).step(context)
    assert branch is Branch.TIMEOUT_OR_ERROR
    assert result.status == "internalError"
    assert "params.email" in (result.error or "")
    assert not route.called  # nothing sent


async def test_an_unknown_action_is_a_wiring_mistake(runtime):
    from actionrt import UnknownActionError

    with pytest.raises(UnknownActionError):
        ActionNode(runtime, "ghost")


async def test_earlier_action_results_can_be_read(runtime, actionrt_respx):
    router = actionrt_respx
    route = router.post(url__startswith=STATUS_URL).mock(
        return_value=httpx.Response(200, json={"status": "gold"})
    )
    context = {**CONTEXT, "actions": {"lookup": {"tier": 7}}}
    second = node(runtime, params={"email": "{{ profile.email }}", "points": "{{ actions.lookup.tier }}"})
    assert await second.run(context) is Branch.SUCCESS
    assert json.loads(route.calls.last.request.content)["points"] == 7


async def test_a_mapping_failure_still_emits_its_step_event(actionrt_runtime_factory, actionrt_respx):
    events = []

    class Sink:
        def emit(self, event):
            events.append(event)

    async with actionrt_runtime_factory(ACTION, event_sinks=[Sink()]) as runtime:
        result = await node(runtime).invoke({"profile": {}})
    assert result.status == "internalError"
    assert [(e["action"], e["status"], e["errorCode"]) for e in events] == [
        ("notify", "internalError", "mapping")
    ]


@pytest.mark.parametrize(
    ("profile_id", "why"),
    [(None, "mapping path: gives null, not a string"), ([1], "mapping path: gives a list, not a string")],
)
async def test_a_path_mapping_that_gives_no_string_sends_nothing(runtime, actionrt_respx, profile_id, why):
    route = actionrt_respx.post(url__startswith="https://api.example.com/")
    context = {**CONTEXT, "profile": {**CONTEXT["profile"], "id": profile_id}}
    branch, result = await node(runtime, path="{{ profile.id }}").step(context)
    assert (branch, result.status, result.error) == (Branch.TIMEOUT_OR_ERROR, "internalError", why)
    assert not route.called  # not ".../customers/None"


async def test_an_integer_path_is_written_as_a_segment(runtime, actionrt_respx):
    route = actionrt_respx.post("https://api.example.com/v1/customers/42").respond(200, json={})
    context = {**CONTEXT, "profile": {**CONTEXT["profile"], "id": 42}}
    assert await node(runtime, path="{{ profile.id }}").run(context) is Branch.SUCCESS
    assert route.called


async def test_a_mapping_that_reads_a_dict_method_says_how_to_read_the_key(runtime, actionrt_respx):
    route = actionrt_respx.post(url__startswith="https://api.example.com/")
    context = {**CONTEXT, "event": {"points": 1, "cart": {"items": ["a"]}}}
    tags = node(runtime, params={"email": "a@b.c", "points": 1, "tags": "{{ event.cart.items }}"})
    result = await tags.invoke(context)
    assert result.status == "internalError" and not route.called
    assert result.error is not None and result.error.startswith("mapping params.tags: gives a function")
    assert "cart['items']" in result.error


def contexts_built(runtime) -> list[object]:
    """The Jinja contexts the runtime's mappings build from now on, as they are built."""
    jinja = runtime.expressions.jinja
    built: list[object] = []

    class CountedContext(jinja.context_class):  # type: ignore[misc,name-defined]
        def __init__(self, *args, **kwargs):
            built.append(self)
            super().__init__(*args, **kwargs)

    jinja.context_class = CountedContext
    return built


async def test_a_nodes_mappings_evaluate_in_one_shared_context(runtime, actionrt_respx):
    route = actionrt_respx.post(url__startswith=STATUS_URL).mock(
        return_value=httpx.Response(200, json={"status": "gold"})
    )
    built = contexts_built(runtime)
    filtered = node(
        runtime,
        params={"email": "{{ profile.email | upper | lower }}", "points": "{{ event.points | int }}"},
        headers={"x-request-id": "{{ 'req-' ~ profile.id }}"},
        query={"locale": "{{ profile.locale | default('en') }}"},
        path="{{ profile.id | trim }}/status",
    )
    assert await filtered.run({**CONTEXT}) is Branch.SUCCESS
    assert len(built) == 1  # five mappings, one context (each used to build its own)
    assert json.loads(route.calls.last.request.content) == {"email": "ada@example.com", "points": 42}


async def test_what_one_mapping_sets_is_not_seen_by_the_next(runtime, actionrt_respx):
    actionrt_respx.post(url__startswith=STATUS_URL).mock(return_value=httpx.Response(200, json={}))
    leaky = node(
        runtime,
        params={"email": "{% set hidden = 'x' %}{{ profile.email }}", "points": "{{ hidden | length }}"},
    )
    result = await leaky.invoke({**CONTEXT})
    assert result.error_code == "mapping"
    assert "params.points" in (result.error or "") and "hidden" in (result.error or "")


async def test_filter_mappings_over_paths_build_no_jinja_context(runtime, actionrt_respx):
    route = actionrt_respx.post(url__startswith=STATUS_URL).mock(
        return_value=httpx.Response(200, json={"status": "gold"})
    )
    built = contexts_built(runtime)
    filtered = node(
        runtime,
        params={"email": "{{ profile.email | upper | lower }}", "points": "{{ event.points | int }}"},
        headers={"x-request-id": "{{ profile.id | trim }}"},
        query={"locale": "{{ profile.missing | default('en') }}"},  # not in the data: Jinja's way
        path="{{ profile.id | trim }}/status",
    )
    assert await filtered.run({**CONTEXT}) is Branch.SUCCESS
    assert len(built) == 1  # only the mapping whose path is not in the data needed one
    request = route.calls.last.request
    assert json.loads(request.content) == {"email": "ada@example.com", "points": 42}
    assert request.headers["x-request-id"] == "c-1" and request.url.params["locale"] == "en"
