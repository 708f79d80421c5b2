// The rules page: create a rule from its JSON, deploy, undeploy and delete.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const examples = JSON.parse(document.getElementById("rule-examples").textContent);
  const kind = document.getElementById("rule-kind");
  const editor = document.getElementById("rule-json");
  const problems = document.getElementById("rule-problems");
  async function post(url, body) {
    const headers = { "X-CSRF-Token": csrf };
    const init = { method: "POST", headers };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    return send(url, init);
  }
  async function send(url, init) {
    let response;
    try { response = await fetch(url, init); } catch (e) {
      return { ok: false, data: { error: "Could not reach the service: check that it is running and try again." } };
    }
    return { ok: response.ok, data: await response.json().catch(() => null) };
  }
  function showError(answer) {
    const box = document.getElementById("rules-error");
    box.hidden = false;
    box.textContent = (answer.data && answer.data.error) || "The service refused the change.";
  }
  kind.addEventListener("change", () => { editor.value = JSON.stringify(examples[kind.value], null, 2); });
  document.getElementById("create-rule").addEventListener("click", async () => {
    problems.hidden = true;
    problems.innerHTML = "";
    let rule;
    try { rule = JSON.parse(editor.value); } catch (e) {
      problems.hidden = false;
      problems.innerHTML = "";
      const li = document.createElement("li");
      li.textContent = "Invalid JSON: " + e.message;
      problems.appendChild(li);
      return;
    }
    const answer = await post(`/limits/${kind.value}`, rule);
    if (answer.ok) { window.location.reload(); return; }
    problems.hidden = false;
    for (const p of (answer.data && answer.data.problems && answer.data.problems.length) || [{ path: "", message: answer.data && answer.data.detail }]) {
      const li = document.createElement("li");
      li.textContent = (p.path ? p.path + ": " : "") + p.message;
      problems.appendChild(li);
    }
  });
  document.querySelectorAll(".rule-toggle").forEach((button) => {
    button.addEventListener("click", async () => {
      const uid = button.closest("tr").dataset.uid;
      const answer = await post(`/limits/rules/${uid}/${button.dataset.action}`);
      if (answer.ok) window.location.reload(); else showError(answer);
    });
  });
  document.querySelectorAll(".rule-delete").forEach((button) => {
    button.addEventListener("click", async () => {
      if (!window.confirm("Delete this rule?")) return;
      const uid = button.closest("tr").dataset.uid;
      const answer = await send(`/limits/rules/${uid}`, { method: "DELETE", headers: { "X-CSRF-Token": csrf } });
      if (answer.ok) window.location.reload(); else showError(answer);
    });
  });
})();
