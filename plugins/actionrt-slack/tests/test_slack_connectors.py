"""The Slack connectors send what Slack documents, and read Slack's `ok: false` answers.

Webhooks: https://api.slack.com/incoming-webhooks (POST JSON `{text}` to the webhook URL).
chat.postMessage: https://api.slack.com/methods/chat.postMessage (POST https://slack.com/api/
chat.postMessage, `Authorization: Bearer xoxb-...`, JSON `{channel, text}`).
"""

from __future__ import annotations

import actionrt_slack
import httpx
import pytest
import respx

from actionrt.connectors import Verdict
from actionrt.errors import ValidationError
from actionrt.plugins import Plugins
from actionrt.registry import Registry
from actionrt.testing import RuntimeFactory, assert_request_sent, http_response

WEBHOOK = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"


async def test_webhook_posts_the_text_to_the_webhook_url(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    actionrt_respx.post(WEBHOOK).respond(200, text="ok")
    runtime = actionrt_runtime_factory(
        {"name": "vipAlert", "connector": "slack.webhook", "settings": {"webhookUrl": WEBHOOK}},
        plugins=[actionrt_slack],
    )

    async with runtime:
        result = await runtime.invoke("vipAlert", params={"text": "A VIP signed up"})

    assert result.status == "http_200"
    assert_request_sent(
        actionrt_respx,
        method="POST",
        url=WEBHOOK,
        headers={"Content-Type": "application/json; charset=utf-8"},
        json={"text": "A VIP signed up"},
    )


async def test_a_webhook_url_kept_in_a_secret_is_read_at_send_time(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    actionrt_respx.post(WEBHOOK).respond(200, text="ok")
    runtime = actionrt_runtime_factory(
        {
            "name": "vipAlert",
            "connector": "slack.webhook",
            "settings": {"webhookUrl": "{{ secrets.SLACK_WEBHOOK_URL }}"},
        },
        plugins=[actionrt_slack],
        secrets={"SLACK_WEBHOOK_URL": WEBHOOK},
    )
    definition = runtime.registry.actions["vipAlert"].definition

    async with runtime:
        result = await runtime.invoke("vipAlert", params={"text": "hi"})

    # The action as listed shows only the prefix: the path is the credential.
    assert definition.endpoint.url == "https://hooks.slack.com/services/"
    assert definition.authentication == {"type": "slackWebhook", "url": "{{ secrets.SLACK_WEBHOOK_URL }}"}
    assert result.ok
    assert_request_sent(actionrt_respx, method="POST", url=WEBHOOK, json={"text": "hi"})


async def test_a_webhook_secret_pointing_elsewhere_is_refused_and_nothing_is_sent(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    runtime = actionrt_runtime_factory(
        {"name": "vipAlert", "connector": "slack.webhook", "settings": {"webhookUrl": "{{ secrets.HOOK }}"}},
        plugins=[actionrt_slack],
        secrets={"HOOK": "https://attacker.example.com/services/x"},
    )

    async with runtime:
        result = await runtime.invoke("vipAlert", params={"text": "hi"})

    assert result.status == "internalError"
    assert result.error is not None
    assert "https://hooks.slack.com/services/" in result.error
    assert "attacker" not in result.error
    assert actionrt_respx.calls.call_count == 0


def test_a_literal_webhook_url_must_be_slacks() -> None:
    with pytest.raises(ValidationError) as caught:
        Registry.from_path([], plugins=Plugins.load([actionrt_slack], entry_points=False)).parse(
            {"name": "x", "connector": "slack.webhook", "settings": {"webhookUrl": "https://example.com/x"}},
            "x.yaml",
        )
    assert str(caught.value) == (
        "x.yaml: settings.webhookUrl: must start with https://hooks.slack.com/services/ or be a "
        "{{ secrets.NAME }} reference"
    )


async def test_post_message_sends_the_bot_token_and_the_documented_body(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    actionrt_respx.post("https://slack.com/api/chat.postMessage").respond(
        200, json={"ok": True, "channel": "C1H9RESGL", "ts": "1503435956.000247"}
    )
    runtime = actionrt_runtime_factory(
        {
            "name": "notifySales",
            "connector": "slack.postMessage",
            "settings": {"token": "{{ secrets.SLACK_BOT_TOKEN }}"},
        },
        plugins=[actionrt_slack],
        secrets={"SLACK_BOT_TOKEN": "xoxb-test-token"},
    )

    async with runtime:
        result = await runtime.invoke("notifySales", params={"channel": "C1H9RESGL", "text": "Hello world"})

    assert result.ok
    assert result.response == {"ok": True, "channel": "C1H9RESGL", "ts": "1503435956.000247"}
    assert_request_sent(
        actionrt_respx,
        method="POST",
        url="https://slack.com/api/chat.postMessage",
        headers={
            "Authorization": "Bearer xoxb-test-token",
            "Content-Type": "application/json; charset=utf-8",
        },
        json={"channel": "C1H9RESGL", "text": "Hello world"},
    )


def test_a_fixed_channel_leaves_only_the_text_variable() -> None:
    action = actionrt_slack.SlackPostMessage().expand(
        {"name": "x", "connector": "slack.postMessage", "settings": {"token": "t", "channel": "#sales"}}
    )
    assert action["request"]["sample"]["channel"] == "#sales"
    assert list(action["request"]["variables"]) == ["text"]


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (http_response(200, json={"ok": True, "ts": "1"}), None),
        (
            http_response(200, json={"ok": False, "error": "channel_not_found"}),
            Verdict.do_not_retry("slack:channel_not_found"),
        ),
        (
            http_response(200, json={"ok": False, "error": "invalid_auth"}),
            Verdict.do_not_retry("slack:invalid_auth"),
        ),
        (
            http_response(200, json={"ok": False, "error": "not_in_channel"}),
            Verdict.do_not_retry("slack:not_in_channel"),
        ),
        # "Refer to the Retry-After header for when to retry the request."
        (
            http_response(200, json={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "30"}),
            Verdict.retry_later(30, "slack:ratelimited"),
        ),
        (
            http_response(200, json={"ok": False, "error": "ratelimited"}),
            Verdict.retry_now("slack:ratelimited"),
        ),
        (
            http_response(200, json={"ok": False, "error": "service_unavailable"}),
            Verdict.retry_now("slack:service_unavailable"),
        ),
        # https://api.slack.com/methods/chat.postMessage#errors, internal_error and fatal_error:
        # "It's possible some aspect of the operation succeeded before the error was raised."
        (
            http_response(200, json={"ok": False, "error": "internal_error"}),
            Verdict.do_not_retry("slack:internal_error"),
        ),
        (
            http_response(200, json={"ok": False, "error": "fatal_error"}),
            Verdict.do_not_retry("slack:fatal_error"),
        ),
        # 429 carries Retry-After: the engine's default policy retries it and honours the header.
        (http_response(429, json={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "3"}), None),
        (http_response(500, text="oops"), None),
    ],
)
def test_post_message_classifies_slack_answers(answer: object, verdict: Verdict | None) -> None:
    assert actionrt_slack.SlackPostMessage().classify_response(answer) == verdict  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "body", "attempts"),
    [
        # https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks
        (400, "invalid_payload", 1),  # the request itself is wrong: sending it again can't help
        (400, "user_not_found", 1),
        (410, "channel_is_archived", 1),
        (410, "no_active_hooks", 1),
        (500, "rollup_error", 4),  # "likely not your fault": retried (3 retries)
    ],
)
async def test_webhook_errors_are_retried_only_when_slack_says_it_may_help(
    actionrt_runtime_factory: RuntimeFactory,
    actionrt_respx: respx.MockRouter,
    status: int,
    body: str,
    attempts: int,
) -> None:
    route = actionrt_respx.post(WEBHOOK).respond(status, text=body)
    # The reference rule retries every HTTP error but 401, 403 and 404: Slack's own codes say better.
    runtime = actionrt_runtime_factory(
        {
            "name": "vipAlert",
            "connector": "slack.webhook",
            "settings": {"webhookUrl": WEBHOOK},
            "retry": {"policy": "reference"},
        },
        plugins=[actionrt_slack],
    )

    async with runtime:
        result = await runtime.invoke("vipAlert", params={"text": "A VIP signed up"})

    assert result.status == f"http_{status}"
    assert (result.attempts, route.call_count) == (attempts, attempts)


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (http_response(200, text="ok"), None),
        (http_response(400, text="invalid_payload"), Verdict.do_not_retry("slack:invalid_payload")),
        (http_response(410, text="channel_is_archived"), Verdict.do_not_retry("slack:channel_is_archived")),
        (http_response(429, text="rate_limited", headers={"Retry-After": "1"}), None),
        (http_response(500, text="rollup_error"), None),
    ],
)
def test_webhook_classifies_slack_answers(answer: object, verdict: Verdict | None) -> None:
    assert actionrt_slack.SlackWebhook().classify_response(answer) == verdict  # type: ignore[arg-type]


def test_the_plugin_registers_its_connectors_and_scheme() -> None:
    plugins = Plugins.load([actionrt_slack], entry_points=False)
    assert {"slack.webhook", "slack.postMessage"} <= set(plugins.connectors)
    assert "slackWebhook" in plugins.schemes
    assert plugins.failures == []


def test_httpx_is_what_the_kit_binds(actionrt_respx: respx.MockRouter) -> None:
    actionrt_respx.get("https://slack.com/api/api.test").respond(200, json={"ok": True})
    assert httpx.get("https://slack.com/api/api.test").json() == {"ok": True}
