// The rules page: a form generated from each rule kind's JSON Schema to create or edit a rule;
// deploy, undeploy and delete from the table.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const read = (id) => JSON.parse(document.getElementById(id).textContent);
  const examples = read("rule-examples");
  const schemas = read("rule-schemas");
  const documents = read("rule-documents");
  const kind = document.getElementById("rule-kind");
  const form = document.getElementById("rule-form");
  const fields = document.getElementById("rule-fields");
  const problems = document.getElementById("rule-problems");
  const title = document.getElementById("rule-form-title");
  const saveButton = document.getElementById("save-rule");
  const cancel = document.getElementById("cancel-edit");
  let editing = null; // uid of the rule being edited, or null when creating
  let counter = 0;

  async function send(url, method, body) {
    const init = { method, headers: { "X-CSRF-Token": csrf } };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    let response;
    try { response = await fetch(url, init); } catch (e) {
      return { ok: false, data: { detail: "Could not reach the service: check that it is running and try again." } };
    }
    return { ok: response.ok, data: await response.json().catch(() => null) };
  }
  function showError(answer) {
    const box = document.getElementById("rules-error");
    box.hidden = false;
    box.textContent = (answer.data && (answer.data.detail || answer.data.error)) || "The service refused the change.";
  }

  // -- the form, from the schema -----------------------------------------------------------------
  function resolve(root, node) {
    while (node && node.$ref) node = root.$defs[node.$ref.split("/").pop()];
    return node || {};
  }
  function optionalOf(root, node) {
    // `X | None` is `anyOf: [X, {type: null}]`: the field is X and may be left out.
    if (node.anyOf) {
      const kept = node.anyOf.filter((v) => v.type !== "null");
      if (kept.length === 1) return { node: resolve(root, kept[0]), optional: true };
    }
    return { node: resolve(root, node), optional: false };
  }
  function labelOf(name) {
    const words = name.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
    const text = words.replace(/\burl\b/g, "URL").replace(/\bhttp\b/g, "HTTP").replace(/\bms\b/g, "(ms)");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  function hintOf(node) {
    const bounds = [];
    if (node.minimum !== undefined) bounds.push(`at least ${node.minimum}`);
    if (node.exclusiveMinimum !== undefined) bounds.push(`more than ${node.exclusiveMinimum}`);
    if (node.maximum !== undefined) bounds.push(`at most ${node.maximum}`);
    return bounds.join(", ");
  }
  function errorSlot(holder) {
    const slot = document.createElement("p");
    slot.className = "field-error";
    slot.id = `rule-error-${++counter}`;
    slot.hidden = true;
    holder.appendChild(slot);
    return slot;
  }
  function render(root, node, path, name, required, value, parent) {
    const { node: shape, optional } = optionalOf(root, node);
    const label = labelOf(name) + (required && !optional ? "" : " (optional)");
    if (shape.type === "object") {
      const set = document.createElement("fieldset");
      set.className = "rule-group";
      set.dataset.path = path;
      const legend = document.createElement("legend");
      legend.textContent = label;
      set.appendChild(legend);
      if (shape.description) {
        const hint = document.createElement("p");
        hint.className = "hint";
        hint.textContent = shape.description.replace(/`/g, "");
        set.appendChild(hint);
      }
      const needed = new Set(shape.required || []);
      for (const [key, child] of Object.entries(shape.properties || {})) {
        render(root, child, path ? `${path}.${key}` : key, key, needed.has(key), (value || {})[key], set);
      }
      errorSlot(set);
      parent.appendChild(set);
      return;
    }
    if (shape.type === "array" && shape.items && shape.items.enum) {
      const set = document.createElement("fieldset");
      set.className = "field rule-choices";
      set.dataset.path = path;
      const legend = document.createElement("legend");
      legend.textContent = label;
      set.appendChild(legend);
      const chosen = new Set(value || []);
      for (const option of shape.items.enum) {
        const id = `rule-in-${++counter}`;
        const box = document.createElement("input");
        Object.assign(box, { type: "checkbox", id, value: option, checked: chosen.has(option) });
        const tag = document.createElement("label");
        tag.htmlFor = id;
        tag.textContent = option;
        const span = document.createElement("span");
        span.className = "choice";
        span.append(box, tag);
        set.appendChild(span);
      }
      const slot = errorSlot(set);
      set.setAttribute("aria-describedby", slot.id);
      parent.appendChild(set);
      return;
    }
    const field = document.createElement("div");
    field.className = "field";
    field.dataset.path = path;
    const id = `rule-in-${++counter}`;
    const tag = document.createElement("label");
    tag.htmlFor = id;
    tag.textContent = label;
    let input;
    if (shape.enum) {
      input = document.createElement("select");
      for (const option of ["", ...shape.enum]) input.add(new Option(option, option));
    } else {
      input = document.createElement("input");
      input.type = shape.type === "integer" || shape.type === "number" ? "number" : "text";
      if (shape.type === "integer") input.step = "1";
    }
    input.id = id;
    input.dataset.type = shape.type || "string";
    if (required && !optional) input.setAttribute("aria-required", "true");
    if (value !== undefined && value !== null) input.value = String(value);
    field.append(tag, input);
    const hint = hintOf(shape);
    const slot = errorSlot(field);
    const described = [slot.id];
    if (hint) {
      const p = document.createElement("p");
      p.className = "hint";
      p.id = `rule-hint-${counter}`;
      p.textContent = hint;
      field.insertBefore(p, slot);
      described.unshift(p.id);
    }
    input.setAttribute("aria-describedby", described.join(" "));
    parent.appendChild(field);
  }
  function collect(root, node, holder) {
    // The value under `holder` in the schema's shape; undefined when left empty.
    const { node: shape } = optionalOf(root, node);
    if (shape.type === "object") {
      const out = {};
      for (const [key, child] of Object.entries(shape.properties || {})) {
        const el = holder.querySelector(`:scope > [data-path="${CSS.escape(`${holder.dataset.path}.${key}`)}"]`);
        const got = el ? collect(root, child, el) : undefined;
        if (got !== undefined) out[key] = got;
      }
      return Object.keys(out).length ? out : undefined;
    }
    if (shape.type === "array") {
      return [...holder.querySelectorAll("input[type=checkbox]:checked")].map((b) => b.value);
    }
    const input = holder.querySelector("input, select");
    const text = input.value.trim();
    if (text === "") return undefined;
    if (shape.type === "integer" || shape.type === "number") {
      const number = Number(text);
      return Number.isFinite(number) ? number : text;
    }
    return text;
  }
  function build(kindName, value) {
    fields.innerHTML = "";
    const schema = schemas[kindName];
    const needed = new Set(schema.required || []);
    for (const [key, child] of Object.entries(schema.properties)) {
      render(schema, child, key, key, needed.has(key), value[key], fields);
    }
  }
  function readRule() {
    const schema = schemas[kind.value];
    const out = {};
    for (const [key, child] of Object.entries(schema.properties)) {
      const el = fields.querySelector(`:scope > [data-path="${CSS.escape(key)}"]`);
      const got = collect(schema, child, el);
      if (got !== undefined) out[key] = got;
    }
    return out;
  }

  // -- problems at their fields -------------------------------------------------------------------
  function clearProblems() {
    problems.hidden = true;
    problems.innerHTML = "";
    for (const el of fields.querySelectorAll(".invalid")) el.classList.remove("invalid");
    for (const el of fields.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    for (const slot of fields.querySelectorAll(".field-error")) { slot.hidden = true; slot.textContent = ""; }
  }
  function holderFor(path) {
    // The deepest form element for a problem's path (`services.action.rating.maxCallsCount`).
    let candidate = path;
    while (candidate) {
      const el = fields.querySelector(`[data-path="${CSS.escape(candidate)}"]`);
      if (el) return el;
      candidate = candidate.includes(".") ? candidate.slice(0, candidate.lastIndexOf(".")) : "";
    }
    return null;
  }
  function showProblems(list) {
    let first = null;
    for (const p of list) {
      const holder = holderFor(p.path || "");
      if (!holder) {
        const li = document.createElement("li");
        li.textContent = (p.path ? p.path + ": " : "") + p.message;
        problems.appendChild(li);
        problems.hidden = false;
        continue;
      }
      holder.classList.add("invalid");
      const slot = holder.querySelector(":scope > .field-error");
      slot.hidden = false;
      slot.textContent = slot.textContent ? `${slot.textContent}\n${p.message}` : p.message;
      const input = holder.querySelector(":scope > input, :scope > select");
      if (input) input.setAttribute("aria-invalid", "true");
      else holder.setAttribute("aria-invalid", "true");
      first = first || input || holder.querySelector("input");
    }
    if (first) first.focus();
  }

  // -- create and edit ----------------------------------------------------------------------------
  function startCreating() {
    editing = null;
    kind.disabled = false;
    title.textContent = "Create a rule";
    saveButton.textContent = "Create";
    cancel.hidden = true;
    clearProblems();
    build(kind.value, examples[kind.value]);
  }
  function startEditing(uid) {
    const stored = documents[uid];
    editing = uid;
    kind.value = stored.kind;
    kind.disabled = true;
    title.textContent = "Edit the rule";
    saveButton.textContent = "Save";
    cancel.hidden = false;
    clearProblems();
    build(stored.kind, stored.rule);
    title.focus();
  }
  kind.addEventListener("change", startCreating);
  cancel.addEventListener("click", startCreating);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems();
    const rule = readRule();
    saveButton.disabled = true;
    const answer = editing
      ? await send(`/limits/rules/${editing}`, "PUT", rule)
      : await send(`/limits/${kind.value}`, "POST", rule);
    saveButton.disabled = false;
    if (answer.ok) { window.location.reload(); return; }
    const listed = answer.data && answer.data.problems;
    showProblems(listed && listed.length ? listed : [{ path: "", message: (answer.data && answer.data.detail) || "The service refused the rule." }]);
  });
  document.querySelectorAll(".rule-edit").forEach((button) => {
    button.addEventListener("click", () => startEditing(button.closest("tr").dataset.uid));
  });
  document.querySelectorAll(".rule-toggle").forEach((button) => {
    button.addEventListener("click", async () => {
      const uid = button.closest("tr").dataset.uid;
      const answer = await send(`/limits/rules/${uid}/${button.dataset.action}`, "POST");
      if (answer.ok) window.location.reload(); else showError(answer);
    });
  });
  document.querySelectorAll(".rule-delete").forEach((button) => {
    button.addEventListener("click", async () => {
      if (!window.confirm("Delete this rule?")) return;
      const uid = button.closest("tr").dataset.uid;
      const answer = await send(`/limits/rules/${uid}`, "DELETE");
      if (answer.ok) window.location.reload(); else showError(answer);
    });
  });
  startCreating();
})();
