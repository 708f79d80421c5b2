// The journey editor: add action nodes, map each variable with an expression over profile,
// event and earlier actions' results (completion offered), preview the mapped values against a
// sample profile, then save as a draft or publish.
"use strict";

// The journeys list: Publish makes a journey live, Stop takes it back to a draft.
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  document.querySelectorAll(".journey-status").forEach((button) => {
    button.addEventListener("click", async () => {
      button.disabled = true;
      const box = document.getElementById("journeys-error");
      box.hidden = true;
      let response = null;
      try {
        response = await fetch(`/journeys/${encodeURIComponent(button.dataset.id)}/${button.dataset.do}`, {
          method: "POST",
          headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json", Accept: "application/json" },
        });
      } catch (e) {
        response = null;
      }
      if (response && response.ok) { window.location.reload(); return; }
      let data = null;
      if (response) { try { data = await response.json(); } catch (e) { data = null; } }
      box.hidden = false;
      box.textContent = response ? (data && data.detail) || `The service answered with error ${response.status}.`
        : "Could not reach the service: check that it is running and try again.";
      button.disabled = false;
    });
  });
})();

(function () {
  const form = document.getElementById("journey-form");
  if (!form) return;
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const csrf = $('meta[name="csrf-token"]').content;
  const actions = Object.fromEntries(JSON.parse($("#journey-actions").textContent).map((a) => [a.name, a]));
  const nodes = $("#journey-nodes");
  let idTyped = false;

  function slug(text) {
    return text.trim().replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64);
  }
  $("#j-name").addEventListener("input", () => { if (!idTyped) $("#j-id").value = slug($("#j-name").value); });
  $("#j-id").addEventListener("input", () => { idTyped = true; });

  // The variables a node maps, as (group, key, label) rows.
  function variablesOf(action) {
    const v = action.variables;
    return [
      ...Object.entries(v.params).map(([path, p]) => ({ group: "params", key: path, label: p.label, where: path, optional: p.optional })),
      ...v.headers.map((h) => ({ group: "headers", key: h.name, label: h.label, where: "header " + h.name, optional: h.optional })),
      ...v.query.map((q) => ({ group: "query", key: q.name, label: q.label, where: "query " + q.name, optional: q.optional })),
    ];
  }

  // Completion: the sample profile's fields, the event, and every earlier node's result.
  function refreshCompletion() {
    const list = $("#j-expressions");
    list.innerHTML = "";
    const options = [];
    let profile = {};
    try { profile = JSON.parse($("#j-profile").value) || {}; } catch (e) { profile = {}; }
    for (const key of Object.keys(profile)) options.push(`{{ profile.${key} }}`);
    options.push("{{ event.type }}");
    $$("li.journey-node", nodes).forEach((li) => options.push(`{{ actions.${li.dataset.nodeId}.status }}`));
    for (const text of options) {
      const o = document.createElement("option");
      o.value = text;
      list.appendChild(o);
    }
  }

  // The preview: the service evaluates each node's mappings with the runtime's sandboxed
  // expressions against the sample profile; an answer older than the node's last request is dropped.
  const WHERE = { params: "", headers: "header ", query: "query " };
  function nodeMappings(li) {
    const mappings = { params: {}, headers: {}, query: {} };
    $$("input.mapping", li).forEach((input) => {
      if (input.value.trim()) mappings[input.dataset.group][input.dataset.key] = input.value.trim();
    });
    return mappings;
  }
  async function previewNode(li, profile) {
    const box = $(".node-preview", li);
    const mappings = nodeMappings(li);
    const asked = String(Number(li.dataset.previewSeq || 0) + 1);
    li.dataset.previewSeq = asked;
    if (!Object.values(mappings).some((m) => Object.keys(m).length)) { box.textContent = "nothing mapped yet"; return; }
    let answer = null;
    try {
      const response = await fetch("/journeys/preview", {
        method: "POST",
        headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ mappings, profile }),
      });
      answer = response.ok ? await response.json() : null;
    } catch (e) {
      answer = null;
    }
    if (li.dataset.previewSeq !== asked) return;
    if (!answer) { box.textContent = "The preview is unavailable: check that the service is running."; return; }
    const lines = [];
    for (const group of Object.keys(WHERE)) {
      for (const key of Object.keys(mappings[group])) {
        const failed = (answer.errors[group] || {})[key];
        lines.push(failed !== undefined ? `${WHERE[group]}${key}: ${failed}`
          : `${WHERE[group]}${key} = ${JSON.stringify(answer.values[group][key])}`);
      }
    }
    box.textContent = lines.join("\n");
  }

  function refreshPreview() {
    let profile = {};
    const slot = $('[for="j-profile"] ~ .field-error');
    try {
      profile = JSON.parse($("#j-profile").value) || {};
      slot.hidden = true;
    } catch (e) {
      slot.hidden = false;
      slot.textContent = "Invalid JSON: " + e.message;
    }
    $$("li.journey-node", nodes).forEach((li) => previewNode(li, profile));
    refreshCompletion();
  }

  let counter = 0;
  function addNode(name, stored) {
    const action = actions[name];
    counter += 1;
    const nodeId = stored ? stored.id : `${name}_${counter}`;
    const li = document.createElement("li");
    li.className = "journey-node";
    li.dataset.nodeId = nodeId;
    li.dataset.action = name;
    // What the editor has no control for (a dynamic path, the timeout branch) is kept as stored.
    li.dataset.kept = JSON.stringify(stored ? { ...stored, mappings: { path: stored.mappings.path } } : {});
    const title = document.createElement("h2");
    title.textContent = `${name} `;
    const code = document.createElement("code");
    code.textContent = nodeId;
    title.appendChild(code);
    li.appendChild(title);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button small";
    remove.textContent = `Remove ${name}`;
    remove.addEventListener("click", () => { li.remove(); refreshPreview(); });
    li.appendChild(remove);
    for (const v of variablesOf(action)) {
      const field = document.createElement("div");
      field.className = "field";
      field.dataset.path = `nodes.${nodeId}.mappings.${v.group}.${v.key}`;
      const id = `map-${counter}-${v.group}-${v.key}`.replace(/[^A-Za-z0-9_-]/g, "_");
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = v.label;
      const where = document.createElement("code");
      where.textContent = v.where;
      label.append(" ", where);
      if (v.optional) {
        const optional = document.createElement("span");
        optional.className = "optional";
        optional.textContent = " optional";
        label.appendChild(optional);
      }
      const input = document.createElement("input");
      input.id = id;
      input.className = "mapping";
      input.dataset.group = v.group;
      input.dataset.key = v.key;
      input.setAttribute("list", "j-expressions");
      input.placeholder = "{{ profile.email }}";
      input.spellcheck = false;
      const mapped = stored && stored.mappings[v.group] && stored.mappings[v.group][v.key];
      if (mapped !== undefined && mapped !== null) input.value = String(mapped);
      input.addEventListener("input", refreshPreview);
      const error = document.createElement("p");
      error.className = "field-error";
      error.hidden = true;
      field.append(label, input, error);
      li.appendChild(field);
    }
    const previewBox = document.createElement("pre");
    previewBox.className = "node-preview";
    previewBox.setAttribute("aria-label", `Preview of ${name}'s mapped values`);
    li.appendChild(previewBox);
    nodes.appendChild(li);
    if (stored) return;
    refreshPreview();
    const first = $("input.mapping", li);
    if (first) first.focus();
  }

  $("#add-node").addEventListener("click", () => addNode($("#j-action").value));
  $("#j-profile").addEventListener("input", refreshPreview);

  function journeyDocument(status) {
    return {
      kind: "journey",
      id: $("#j-id").value.trim(),
      name: $("#j-name").value.trim(),
      status,
      nodes: $$("li.journey-node", nodes).map((li) => {
        const kept = JSON.parse(li.dataset.kept);
        const mappings = { ...(kept.mappings || {}), ...nodeMappings(li) };
        return { ...kept, id: li.dataset.nodeId, action: li.dataset.action, mappings };
      }),
    };
  }

  function showError(text) {
    const box = $("#journey-error");
    box.hidden = false;
    box.textContent = text;
    box.scrollIntoView({ block: "nearest" });
  }

  async function save(status) {
    $("#journey-error").hidden = true;
    $$("[aria-invalid]", form).forEach((el) => el.removeAttribute("aria-invalid"));
    if (!$("#j-name").value.trim()) {
      $("#j-name").setAttribute("aria-invalid", "true");
      $("#j-name").focus();
      showError("Give the journey a name.");
      return;
    }
    const buttons = [$("#save-journey"), $("#publish-journey")];
    buttons.forEach((b) => { b.disabled = true; });
    try {
      let response;
      try {
        response = await fetch(stored ? `/journeys/${encodeURIComponent(stored.id)}` : "/journeys", {
          method: stored ? "PUT" : "POST",
          headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(journeyDocument(status)),
        });
      } catch (e) {
        showError("Could not reach the service: check that it is running and try again.");
        return;
      }
      let data = null;
      try { data = await response.json(); } catch (e) { data = null; }
      if (response.ok) {
        window.location.assign(`/console/journeys?saved=${encodeURIComponent(data.journey.id)}#${encodeURIComponent(data.journey.id)}`);
        return;
      }
      const problems = (data && data.problems) || [{ path: "", message: (data && data.error) || `error ${response.status}` }];
      showError("Not saved: " + problems.map((p) => (p.path ? p.path + ": " : "") + p.message).join("\n"));
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // Editing a stored journey: its name, id and nodes with their mappings.
  const stored = JSON.parse($("#journey-document").textContent);
  if (stored) {
    $("#j-name").value = stored.name;
    $("#j-id").value = stored.id;
    idTyped = true;
    for (const node of stored.nodes) if (actions[node.action]) addNode(node.action, node);
  }

  $("#save-journey").addEventListener("click", () => save("draft"));
  $("#publish-journey").addEventListener("click", () => save("live"));
  refreshPreview();
})();
