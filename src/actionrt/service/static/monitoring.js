// The Monitoring page: fetches /monitoring/calls for the chosen action and period, draws it
// with Chart.js (static/vendor, MIT licence beside it) and refreshes every 15 seconds.
"use strict";

(function () {
  const REFRESH_MS = 15000;
  const actionSelect = document.getElementById("mon-action");
  const windowSelect = document.getElementById("mon-window");
  const charts = {};

  function statusColor(status) {
    if (status.startsWith("http_2")) return "#268e6c";
    if (status.startsWith("http_4")) return "#e68619";
    if (status.startsWith("http_5")) return "#d7373f";
    if (status === "timedout") return "#7e4fcf";
    if (status === "capped") return "#8c8c8c";
    return "#9b1c22"; // internalError and anything else
  }

  function label(time, step) {
    const date = new Date(time * 1000);
    const hhmm = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return step >= 3600 ? `${date.toLocaleDateString()} ${hhmm}` : hhmm;
  }

  function draw(id, config) {
    const existing = charts[id];
    if (existing) {
      existing.data = config.data;
      existing.update("none");
      return;
    }
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
    charts[id] = new window.Chart(document.getElementById(id), config);
  }

  function render(data) {
    const labels = data.times.map((t) => label(t, data.step));
    const statuses = Object.keys(data.calls);
    draw("calls-chart", {
      type: "bar",
      data: {
        labels,
        datasets: statuses.map((status) => ({
          label: status, data: data.calls[status], backgroundColor: statusColor(status), stack: "calls",
        })),
      },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
    });
    const ms = (values) => values.map((v) => (v === null ? null : Math.round(v * 100000) / 100));
    draw("latency-chart", {
      type: "line",
      data: {
        labels,
        datasets: [
          { label: "p50", data: ms(data.latency.p50), borderColor: "#1473e6", spanGaps: false },
          { label: "p95", data: ms(data.latency.p95), borderColor: "#e68619", spanGaps: false },
          { label: "p99", data: ms(data.latency.p99), borderColor: "#d7373f", spanGaps: false },
        ],
      },
      options: { scales: { y: { beginAtZero: true } } },
    });
    const errors = Object.keys(data.errors);
    draw("errors-chart", {
      type: "bar",
      data: {
        labels: errors,
        datasets: [{ label: "calls", data: errors.map((e) => data.errors[e]), backgroundColor: "#d7373f", maxBarThickness: 28 }],
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    draw("limits-chart", {
      type: "bar",
      data: {
        labels,
        datasets: [
          { label: "capped", data: data.capped, backgroundColor: "#8c8c8c" },
          { label: "throttled", data: data.throttled, backgroundColor: "#1473e6" },
        ],
      },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    const sum = (values) => values.reduce((a, b) => a + b, 0);
    const ok = statuses.filter((s) => s.startsWith("http_2")).reduce((n, s) => n + sum(data.calls[s]), 0);
    document.getElementById("mon-total").textContent = String(data.total);
    document.getElementById("mon-failed").textContent = String(data.total - ok);
    document.getElementById("mon-capped").textContent = String(sum(data.capped));
    document.getElementById("mon-throttled").textContent = String(sum(data.throttled));
    document.getElementById("mon-updated").textContent =
      `Updated ${new Date().toLocaleTimeString()}; updates every 15 seconds.`;
    document.body.dataset.monitoringLoaded = String(Number(document.body.dataset.monitoringLoaded || 0) + 1);
  }

  // With a fleet: the queue's depth and dead letters (the queue is the service's, not an action's).
  function renderQueue(data) {
    const labels = data.times.map((t) => label(t, data.step));
    draw("queue-chart", {
      type: "line",
      data: {
        labels,
        datasets: [
          { label: "waiting", data: data.waiting, borderColor: "#1473e6", spanGaps: true },
          { label: "dead letters", data: data.dead, borderColor: "#d7373f", spanGaps: true },
        ],
      },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    document.getElementById("queue-caption").textContent =
      `Queue depth and dead letters${data.queue ? ` (queue ${data.queue})` : ""}`;
    document.getElementById("mon-queued").textContent = data.last ? String(data.last.waiting) : "–";
    document.getElementById("mon-dead").textContent = data.last ? String(data.last.dead) : "–";
  }

  async function getJson(url) {
    const answer = await fetch(url, { headers: { accept: "application/json" } });
    if (!answer.ok) throw new Error(`Could not load the figures (${answer.status}).`);
    return answer.json();
  }

  async function refresh() {
    const query = new URLSearchParams({ window: windowSelect.value });
    if (actionSelect.value) query.set("action", actionSelect.value);
    const fleet = document.getElementById("queue-chart") !== null;
    let calls, queue;
    try {
      [calls, queue] = await Promise.all([
        getJson(`/monitoring/calls?${query}`),
        fleet ? getJson(`/monitoring/queue?window=${windowSelect.value}`) : null,
      ]);
    } catch (e) {
      document.getElementById("mon-updated").textContent = e.message;
      return;
    }
    if (queue && queue.fleet) renderQueue(queue);
    render(calls);
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  async function showCall(action, callId) {
    const panel = document.getElementById("call-details");
    await window.callDetails.show(panel, action, callId);
    panel.hidden = false;
  }

  async function refreshRecent() {
    const query = new URLSearchParams({ limit: "12" });
    if (actionSelect.value) query.set("action", actionSelect.value);
    const answer = await fetch(`/monitoring/recent?${query}`);
    if (!answer.ok) return;
    const body = document.querySelector("#recent-calls tbody");
    body.replaceChildren();
    const calls = (await answer.json()).calls;
    if (!calls.length) {
      cell(body.insertRow(), "No call yet.", "empty").colSpan = 5;
    }
    for (const call of calls) {
      const row = body.insertRow();
      row.dataset.callId = call.callId;
      const time = row.insertCell();
      time.append(window.callDetails.button(call.callId, new Date(call.time * 1000).toLocaleTimeString()));
      cell(row, call.action);
      cell(row, call.status);
      cell(row, String(call.attempts), "num");
      cell(row, (call.elapsed * 1000).toFixed(1), "num");
      // The time is a button (keyboard); a click anywhere on the row does the same.
      row.addEventListener("click", () => showCall(call.action, call.callId));
    }
  }

  actionSelect.addEventListener("change", refreshRecent);
  window.setInterval(refreshRecent, REFRESH_MS);
  refreshRecent();
  actionSelect.addEventListener("change", refresh);
  windowSelect.addEventListener("change", refresh);
  refresh();
  window.setInterval(refresh, REFRESH_MS);
})();
