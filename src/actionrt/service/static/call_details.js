// Call details (GET /actions/{name}/calls/{callId}): what each attempt sent and got back, with
// the credentials masked by the service. Shared by the action pane's dialog and the Monitoring
// page; `show` fills an element holding `.call-id`, `.call-summary` and `.call-requests`.
"use strict";

window.callDetails = (function () {
  const GONE = "The details of this call are no longer kept: the service keeps those of the last " +
    "50 calls of each action since it started.";

  function block(parent, title, value) {
    const head = document.createElement("div");
    head.textContent = title;
    const pre = document.createElement("pre");
    pre.textContent = value;
    parent.append(head, pre);
  }

  function headers(map) {
    return Object.entries(map || {}).map(([k, v]) => `${k}: ${v}`).join("\n") || "(none)";
  }

  function attempt(r) {
    const box = document.createElement("div");
    box.className = "call-request";
    const title = document.createElement("h3");
    title.textContent = `Attempt ${r.number} at +${(r.startedAfter * 1000).toFixed(1)} ms, ` +
      `${(r.duration * 1000).toFixed(1)} ms: ` + (r.response ? `answered ${r.response.status}` : `no answer (${r.error})`);
    box.append(title);
    block(box, `${r.request.method} ${r.request.url}`, headers(r.request.headers));
    if (r.request.body !== null) block(box, "Request body" + (r.request.bodyCut ? " (cut)" : ""), r.request.body);
    if (r.response) {
      block(box, "Response headers", headers(r.response.headers));
      if (r.response.body !== null) block(box, "Response body" + (r.response.bodyCut ? " (cut)" : ""), r.response.body);
    }
    if (r.retriedBecause) {
      const why = document.createElement("p");
      why.className = "retried";
      why.textContent = `Retried because ${r.retriedBecause}.`;
      box.append(why);
    }
    return box;
  }

  // Fills `container` with call `callId` of `action`; false (and a sentence saying why) when
  // the service has no details of it.
  async function show(container, action, callId) {
    const id = container.querySelector(".call-id");
    const summary = container.querySelector(".call-summary");
    const list = container.querySelector(".call-requests");
    id.textContent = callId;
    list.replaceChildren();
    let answer;
    try {
      answer = await fetch(`/actions/${encodeURIComponent(action)}/calls/${encodeURIComponent(callId)}`,
        { headers: { accept: "application/json" } });
    } catch (e) {
      summary.textContent = "Could not reach the service: check that it is running and try again.";
      return false;
    }
    if (!answer.ok) {
      summary.textContent = answer.status === 404 ? GONE : `The service answered with error ${answer.status}.`;
      return false;
    }
    const call = await answer.json();
    summary.textContent =
      `${call.action}: ${call.status}, ${call.attempts} attempt(s), ${(call.elapsed * 1000).toFixed(1)} ms` +
      (call.bodiesRecorded ? "" : " — bodies are not recorded (serve --record-bodies)");
    for (const r of call.requests) list.append(attempt(r));
    return true;
  }

  // A button naming call `callId` (its time as the text): keyboard users reach it with Tab.
  function button(callId, text) {
    const opener = document.createElement("button");
    opener.type = "button";
    opener.className = "call-link";
    opener.dataset.callId = callId;
    opener.textContent = text;
    opener.setAttribute("aria-label", `Details of the call at ${text}`);
    return opener;
  }

  return { show, button };
})();
