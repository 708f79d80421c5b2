// The console's behaviour: the configuration pane (header/query rows, the message-parameter
// table, the authentication editors), Save with errors at their fields, the test section.
// Plain JavaScript; the pages are rendered by the server and work from its JSON API.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const NAME_RULE = /^[A-Za-z0-9_]{1,30}$/;
  const SCALARS = ["string", "integer", "decimal", "boolean", "dateTime", "dateTimeOnly", "dateOnly"];
  const SCALAR_LISTS = SCALARS.map((t) => "list" + t[0].toUpperCase() + t.slice(1));

  async function api(method, url, body) {
    const init = { method, headers: { "X-CSRF-Token": csrf, Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (e) {
      // The service is stopped or the network is down: say so in the page, not only in the
      // browser's console.
      return { status: 0, ok: false, data: null, unreachable: true };
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { status: response.status, ok: response.ok, data };
  }

  const UNREACHABLE = "Could not reach the service: check that it is running and try again.";

  // What went wrong with an answer that has no problems to place at fields.
  function failure(answer) {
    if (answer.unreachable) return UNREACHABLE;
    const data = answer.data || {};
    return data.detail || data.error || `The service answered with error ${answer.status}.`;
  }

  // Marks a field's own inputs as invalid for assistive technology too.
  function markInvalid(element) {
    const controls = element.matches("input, select, textarea") ? [element]
      : $$("input, select, textarea", element);
    controls.forEach((c) => c.setAttribute("aria-invalid", "true"));
  }

  // -- the actions list: filter as you type ---------------------------------------------------
  const filter = $("#action-filter");
  if (filter) {
    filter.addEventListener("input", () => {
      const text = filter.value.toLowerCase();
      const rows = $$("#actions-table tbody tr[data-name]");
      rows.forEach((row) => {
        row.hidden = text && !row.textContent.toLowerCase().includes(text);
      });
      // A search that matches nothing says so instead of showing an empty table.
      const none = $("#no-match");
      none.hidden = !rows.length || rows.some((row) => !row.hidden);
      $("td", none).textContent = `No action matches "${filter.value}".`;
    });
  }

  const form = $("#action-form");
  if (!form) return;
  const original = JSON.parse($("#action-doc").textContent || "{}");
  const meta = JSON.parse($("#action-meta").textContent || "{}");
  const readOnly = form.dataset.readOnly === "true";
  const mode = form.dataset.mode;
  const currentName = form.dataset.name;

  // -- errors at their fields -----------------------------------------------------------------
  function clearErrors() {
    $$(".field-error", form).forEach((p) => { p.hidden = true; p.textContent = ""; });
    $$(".invalid", form).forEach((el) => el.classList.remove("invalid"));
    $$("[aria-invalid]", form).forEach((el) => el.removeAttribute("aria-invalid"));
    const box = $("#form-error");
    box.hidden = true;
    box.textContent = "";
    const list = $("#auth-problems");
    if (list) { list.hidden = true; list.innerHTML = ""; }
  }

  function parentPath(path) {
    const bracket = path.lastIndexOf("[");
    const dot = path.lastIndexOf(".");
    const cut = Math.max(bracket, dot);
    return cut > 0 ? path.slice(0, cut) : "";
  }

  function fieldFor(path) {
    for (let p = path; p; p = parentPath(p)) {
      const found = form.querySelector(`[data-path="${CSS.escape(p)}"]`);
      if (found && found.offsetParent !== null) return found;
    }
    return null;
  }

  function showProblems(problems) {
    const unplaced = [];
    for (const problem of problems) {
      let field = fieldFor(problem.path);
      if (!field) { unplaced.push(problem); continue; }
      const row = field.tagName === "TR";
      const where = row || field.dataset.path === problem.path || !problem.path ? "" : problem.path + ": ";
      // A row's own problems (a variable without a label...) are about its value or label cell.
      if (row) field = [$(".f-value", field), field.cells[2]].find((c) => c && $(".field-error", c)) || field.cells[0];
      field.classList.add("invalid");
      markInvalid(field);
      const slot = field.querySelector(":scope > .field-error") || field.querySelector(".field-error");
      if (slot) {
        slot.hidden = false;
        slot.textContent = (slot.textContent ? slot.textContent + "\n" : "") + where + problem.message;
      } else {
        unplaced.push(problem);
      }
    }
    if (unplaced.length) {
      const box = $("#form-error");
      box.hidden = false;
      box.textContent = unplaced.map((p) => (p.path ? p.path + ": " : "") + p.message).join("\n");
    }
    const first = form.querySelector(".invalid");
    if (first) first.scrollIntoView({ block: "center" });
    else if (unplaced.length) $("#form-error").scrollIntoView({ block: "nearest" });
  }

  // A refused edit in the pane's words: its sections' titles, the journeys' names, each
  // field highlighted, and the way out (duplicate the action).
  const PANE_WORDS = {
    "endpoint.method": ["Method", "endpoint.method"],
    "endpoint.dynamicPath": ["Dynamic path", "endpoint.dynamicPath"],
    "endpoint.headers": ["Header fields", "endpoint.headers"],
    "endpoint.queryParameters": ["Query parameters", "endpoint.queryParameters"],
    request: ["Message parameters", "request.sample"],
    response: ["Response example", "response.sample"],
    errorResponse: ["Error response example", "errorResponse.sample"],
    timeout: ["Timeout", "timeout"],
    delete: ["Delete", ""],
  };

  async function journeyNames() {
    const answer = await api("GET", "/journeys");
    const names = {};
    if (answer.ok) answer.data.journeys.forEach((j) => { names[j.id] = j.name; });
    return names;
  }

  function listed(words) {
    return words.length < 2 ? words.join("") : words.slice(0, -1).join(", ") + " and " + words[words.length - 1];
  }

  async function showRefused(data) {
    const names = await journeyNames();
    const journeys = [...new Set(data.refused.flatMap((r) => r.journeys))].map((id) => `“${names[id] || id}”`);
    const fields = data.refused.map((r) => (PANE_WORDS[r.field] || [r.field])[0]);
    const where = `the live journey${journeys.length === 1 ? "" : "s"} ${listed(journeys)}`;
    for (const r of data.refused) {
      const target = PANE_WORDS[r.field] ? PANE_WORDS[r.field][1] : r.field;
      const field = target && fieldFor(target);
      if (!field) continue;
      field.classList.add("invalid");
      markInvalid(field);
      const slot = $(":scope > .field-error", field);
      if (slot) { slot.hidden = false; slot.textContent = `can't change while used in ${where}`; }
    }
    const box = $("#form-error");
    box.hidden = false;
    box.textContent = `Not saved: ${listed(fields)} can't change while this action is used in ${where}. ` +
      "Undo those changes, or duplicate the action and change the copy.";
    box.scrollIntoView({ block: "nearest" });
  }

  // -- name rules, shown inline ---------------------------------------------------------------
  const nameInput = $("#f-name");
  function checkName() {
    const value = nameInput.value;
    $("#name-count").textContent = `${value.length}/30`;
    $("#name-rules").classList.toggle("broken", value !== "" && !NAME_RULE.test(value));
  }
  nameInput.addEventListener("input", checkName);
  checkName();

  // -- header and query rows ------------------------------------------------------------------
  // How every stored secret shows: an empty password input that keeps it unless typed over.
  const STORED = "•••••••• stored — type to replace";

  function paramRow(kind, param, sealed) {
    const row = document.createElement("tr");
    row.className = "param";
    row.innerHTML = `
      <td><input class="p-name" aria-label="name" spellcheck="false"></td>
      <td><select class="p-kind" aria-label="constant or variable">
        <option value="constant">Constant</option><option value="variable">Variable</option></select></td>
      <td><input class="p-value" aria-label="value or label"></td>
      <td><input type="checkbox" class="p-optional" aria-label="optional"></td>
      <td><button type="button" class="remove" aria-label="remove">&times;</button></td>`;
    $(".p-name", row).value = param.name || "";
    $(".p-kind", row).value = param.variable ? "variable" : "constant";
    $(".p-value", row).value = (param.variable ? param.label : param.value) || "";
    $(".p-optional", row).checked = !!param.optional;
    if (sealed) {
      // The page holds only the sealed value's reference: it is sent back unless typed over.
      row.dataset.sealed = param.value;
      $(".p-value", row).value = "";
    }
    const sync = () => {
      const variable = $(".p-kind", row).value === "variable";
      const secret = sealed && !variable;
      $(".p-optional", row).disabled = !variable || readOnly;
      $(".p-value", row).type = secret ? "password" : "text";
      $(".p-value", row).autocomplete = secret ? "new-password" : "off";
      $(".p-value", row).placeholder = variable ? "label shown to the journey author" : secret ? STORED : "value";
      cellPaths(row);
    };
    $(".p-kind", row).addEventListener("change", sync);
    $(".remove", row).addEventListener("click", () => { row.remove(); renumber(kind); });
    if (readOnly) $$("input, select, button", row).forEach((el) => { el.disabled = true; });
    sync();
    return row;
  }

  // The name and value cells are fields of their own (`endpoint.headers[0].name`, `.value` or
  // `.label`), so a problem shows in the cell it is about; the row's own go to its value cell.
  function cellPaths(row) {
    if (!row.dataset.path) return;
    const variable = $(".p-kind", row).value === "variable";
    row.cells[0].dataset.path = `${row.dataset.path}.name`;
    row.cells[2].dataset.path = `${row.dataset.path}.${variable ? "label" : "value"}`;
  }

  function errorSlot(cell) {
    cell.classList.add("field");
    if (!$(":scope > .field-error", cell)) {
      const slot = document.createElement("p");
      slot.className = "field-error";
      slot.hidden = true;
      cell.appendChild(slot);
    }
  }

  function renumber(kind) {
    const base = kind === "headers" ? "endpoint.headers" : "endpoint.queryParameters";
    const table = kind === "headers" ? "#headers-table" : "#query-table";
    $$(`${table} tr.param`).forEach((row, i) => {
      row.dataset.path = `${base}[${i}]`;
      row.classList.add("field");
      [row.cells[0], row.cells[2]].forEach(errorSlot);
      cellPaths(row);
    });
  }

  function addParam(kind, param, sealed = false) {
    const table = kind === "headers" ? "#headers-table" : "#query-table";
    $(`${table} tbody`).appendChild(paramRow(kind, param, sealed));
    renumber(kind);
  }

  const endpoint = original.endpoint || {};
  const secrets = new Set(meta.secrets || []);
  (endpoint.headers || []).forEach((h, i) => addParam("headers", h, secrets.has(`endpoint.headers[${i}].value`)));
  (endpoint.queryParameters || []).forEach((q, i) =>
    addParam("query", q, secrets.has(`endpoint.queryParameters[${i}].value`)));
  $("#add-header").addEventListener("click", () => addParam("headers", {}));
  $("#add-query").addEventListener("click", () => addParam("query", {}));

  function readParams(kind) {
    const table = kind === "headers" ? "#headers-table" : "#query-table";
    return $$(`${table} tr.param`).map((row) => {
      const variable = $(".p-kind", row).value === "variable";
      const param = { name: $(".p-name", row).value.trim() };
      if (variable) {
        param.variable = true;
        param.label = $(".p-value", row).value;
        if ($(".p-optional", row).checked) param.optional = true;
      } else {
        param.value = $(".p-value", row).value || row.dataset.sealed || "";
      }
      return param;
    });
  }

  // -- authentication -------------------------------------------------------------------------
  const authType = $("#f-auth-type");
  const originalAuth = original.authentication || { type: "none" };
  const CUSTOM_TEMPLATE = {
    type: "customAuthorization",
    endpoint: "https://auth.example.com/oauth2/token",
    method: "POST",
    body: { bodyType: "form", bodyParams: { grant_type: "client_credentials" } },
    tokenInResponse: "json://access_token",
    cacheDuration: { duration: 55, timeUnit: "minutes" },
    authorizationType: "bearer",
  };
  const schemas = meta.authSchemas || {};

  function panelFor(type) {
    if (type === "basic" || type === "apiKey" || type === "none") return type;
    return "form";
  }

  // -- a form from a scheme's JSON Schema: an input per scalar property, JSON for the rest ----
  const SCALAR_TYPES = ["string", "integer", "number", "boolean"];

  function variants(property) {
    return property.anyOf ? property.anyOf.filter((v) => v.type !== "null") : [property];
  }

  function kindOf(property) {
    const options = variants(property);
    if (options.every((v) => v.enum || v.const !== undefined)) return "enum";
    if (options.length === 1 && SCALAR_TYPES.includes(options[0].type)) return options[0].type;
    if (options.some((v) => v.type === "string")) return "string";
    return "json";
  }

  function isSecret(property) {
    return variants(property).some((v) => v.writeOnly || v.format === "password");
  }

  function humanized(name, property) {
    const title = property.title || "";
    if (title && title.toLowerCase() !== name.toLowerCase()) return title;
    const words = name.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
    return words[0].toUpperCase() + words.slice(1);
  }

  let schemeFields = [];

  // A sealed secret inside a JSON field shows as the stored-secret marker, numbered; the page
  // swaps the reference back in when it reads the field.
  const SEALED_REF = /\{\{\s*secrets\.console:[A-Za-z0-9_]+\s*\}\}/g;
  const sealedRefs = [];
  function masked(text) {
    return text.replace(SEALED_REF, (ref) => {
      let index = sealedRefs.indexOf(ref);
      if (index < 0) index = sealedRefs.push(ref) - 1;
      return `•••••••• stored secret ${index + 1}`;
    });
  }
  function unmasked(text) {
    return text.replace(/•••••••• stored secret (\d+)/g, (marker, n) => sealedRefs[Number(n) - 1] || marker);
  }

  function renderAuthForm(type, values) {
    const schema = schemas[type] || { properties: {} };
    const required = new Set(schema.required || []);
    const box = $("#auth-form-fields");
    box.innerHTML = "";
    schemeFields = [];
    for (const [name, property] of Object.entries(schema.properties || {})) {
      if (name === "type") continue;
      const kind = kindOf(property);
      const id = `f-auth-${name}`;
      const field = document.createElement("div");
      field.className = "field";
      field.dataset.path = `authentication.${name}`;
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = humanized(name, property) + (kind === "json" ? " (JSON)" : "") + " ";
      if (!required.has(name)) {
        const optional = document.createElement("span");
        optional.className = "optional";
        optional.textContent = "optional";
        label.appendChild(optional);
      }
      field.appendChild(label);
      let input;
      const value = values[name];
      if (kind === "enum") {
        input = document.createElement("select");
        const options = variants(property).flatMap((v) => v.enum || [v.const]);
        if (!required.has(name)) options.unshift("");
        for (const option of options) {
          const o = document.createElement("option");
          o.value = option;
          o.textContent = option === "" ? `(default${property.default ? ": " + property.default : ""})` : option;
          input.appendChild(o);
        }
        // A stored value spelled another way ("Bearer") selects its option ("bearer").
        const text = value === undefined || value === null ? "" : String(value);
        const match = options.find((o) => String(o).toLowerCase() === text.toLowerCase());
        if (match === undefined) {
          const o = document.createElement("option");
          o.value = o.textContent = text;
          input.appendChild(o);
        }
        input.value = match === undefined ? text : String(match);
      } else if (kind === "boolean") {
        input = document.createElement("input");
        input.type = "checkbox";
        input.checked = value === undefined ? !!property.default : !!value;
      } else if (kind === "json") {
        input = document.createElement("textarea");
        input.className = "code";
        input.spellcheck = false;
        input.value = value === undefined || value === null ? "" : masked(JSON.stringify(value, null, 2));
        input.rows = Math.min(12, Math.max(2, input.value.split("\n").length));
      } else {
        input = document.createElement("input");
        if (kind === "integer" || kind === "number") input.type = "number";
        if (isSecret(property)) {
          input.type = "password";
          input.autocomplete = "new-password";
          if (typeof value === "string" && value) input.placeholder = STORED;
        } else {
          input.value = value === undefined || value === null ? "" : String(value);
          input.autocomplete = "off";
        }
      }
      input.id = id;
      field.appendChild(input);
      if (property.description) {
        const hint = document.createElement("p");
        hint.className = "hint";
        hint.textContent = property.description;
        field.appendChild(hint);
      }
      const slot = document.createElement("p");
      slot.className = "field-error";
      slot.hidden = true;
      field.appendChild(slot);
      box.appendChild(field);
      schemeFields.push({ name, kind, input, secret: isSecret(property), required: required.has(name), stored: value });
    }
  }

  // The scheme's configuration from its form; mistakes the page can see are thrown at their field.
  function readSchemeForm(type) {
    const config = { type };
    const problems = [];
    for (const f of schemeFields) {
      const path = `authentication.${f.name}`;
      if (f.kind === "boolean") { config[f.name] = f.input.checked; continue; }
      const text = f.input.value;
      if (text === "") {
        if (f.secret && typeof f.stored === "string" && f.stored) config[f.name] = f.stored;
        else if (f.required) problems.push({ path, message: "required" });
        continue;
      }
      if (f.kind === "json") {
        try { config[f.name] = JSON.parse(unmasked(text)); } catch (e) { problems.push({ path, message: "Invalid JSON: " + e.message }); }
      } else if (f.kind === "integer" || f.kind === "number") {
        config[f.name] = Number(text);
      } else {
        config[f.name] = text;
      }
    }
    if (problems.length) throw problems;
    return config;
  }

  function showAuthPanel() {
    const type = authType.value;
    $$(".auth-panel").forEach((p) => { p.hidden = p.dataset.auth !== panelFor(type); });
    if (panelFor(type) === "form") {
      const start = originalAuth.type === type ? originalAuth
        : type === "customAuthorization" ? CUSTOM_TEMPLATE : { type };
      renderAuthForm(type, start);
      $("#auth-json-status").textContent = "";
    }
  }

  authType.addEventListener("change", showAuthPanel);
  showAuthPanel();

  // A stored secret is kept when its input is left empty: the page only knows its reference.
  function secretOr(input, key) {
    if (input.value) return input.value;
    if (originalAuth.type === authType.value && typeof originalAuth[key] === "string") return originalAuth[key];
    return "";
  }

  function readAuthentication() {
    const type = authType.value;
    if (type === "none") return { type: "none" };
    if (type === "basic") {
      return { type, username: $("#f-basic-username").value, password: secretOr($("#f-basic-password"), "password") };
    }
    if (type === "apiKey") {
      return {
        type,
        name: $("#f-apikey-name").value.trim(),
        value: secretOr($("#f-apikey-value"), "value"),
        location: $("#f-apikey-location").value,
      };
    }
    return readSchemeForm(type);
  }

  $("#validate-auth").addEventListener("click", async () => {
    clearErrors();
    let doc;
    try { doc = buildDocument(); } catch (problem) { showProblems([].concat(problem)); return; }
    const url = "/actions/validate" + (mode === "edit" ? "?replacing=" + encodeURIComponent(currentName) : "");
    const answer = await api("POST", url, doc);
    const status = $("#auth-json-status");
    if (answer.unreachable) {
      status.textContent = UNREACHABLE;
      status.className = "hint bad";
    } else if (answer.ok) {
      status.textContent = "Valid configuration";
      status.className = "hint ok";
    } else if (answer.data && answer.data.refused) {
      showRefused(answer.data);
    } else if (answer.data && answer.data.problems && answer.data.problems.length) {
      const auth = answer.data.problems.filter((p) => p.path.startsWith("authentication"));
      const list = $("#auth-problems");
      list.innerHTML = "";
      auth.forEach((p) => {
        const item = document.createElement("li");
        item.textContent = `${p.path}: ${p.message}`;
        list.appendChild(item);
      });
      list.hidden = auth.length === 0;
      status.textContent = auth.length ? "The configuration has problems" : "The authentication is valid (other fields have problems)";
      status.className = auth.length ? "hint bad" : "hint ok";
      showProblems(answer.data.problems.filter((p) => !p.path.startsWith("authentication")));
    }
  });

  // -- message parameters: example payload -> table of fields --------------------------------
  const sample = $("#f-sample");
  const methodSelect = $("#f-method");
  const request = original.request || {};
  let fieldRows = meta.fieldRows || [];
  // Labels and types typed in the table survive re-inferring the payload.
  const choices = {};
  for (const [path, v] of Object.entries(request.variables || {})) {
    choices[path] = { variable: true, label: v.label, optional: !!v.optional, type: v.type || null };
  }

  function typeOptions(row) {
    if (SCALARS.includes(row.type)) return SCALARS;
    if (SCALAR_LISTS.includes(row.type)) return SCALAR_LISTS;
    return [row.type];
  }

  function underVariableList(path) {
    return fieldRows.some((r) => r.type === "listObject" && path.startsWith(r.path + ".") && choices[r.path] && choices[r.path].variable);
  }

  function renderFields() {
    const body = $("#fields-table tbody");
    body.innerHTML = "";
    for (const row of fieldRows) {
      const choice = choices[row.path] || { variable: false, label: "", optional: false, type: null };
      const tr = document.createElement("tr");
      tr.className = "field-row field";
      tr.dataset.path = `request.variables.${row.path}`;
      tr.dataset.field = row.path;
      const container = row.type === "object";
      const inherited = underVariableList(row.path);
      tr.innerHTML = `
        <td class="f-name" style="padding-left:${0.5 + row.depth * 1.2}rem"></td>
        <td class="f-type"></td>
        <td class="f-kind"></td>
        <td class="f-value"></td>
        <td class="f-optional"></td>`;
      $(".f-name", tr).textContent = row.name;
      const errorSlot = document.createElement("p");
      errorSlot.className = "field-error";
      errorSlot.hidden = true;
      $(".f-name", tr).appendChild(errorSlot);
      if (container) {
        $(".f-type", tr).textContent = "object";
        body.appendChild(tr);
        continue;
      }
      if (inherited) {
        $(".f-type", tr).textContent = row.type;
        $(".f-kind", tr).textContent = "Variable (with its list)";
        body.appendChild(tr);
        continue;
      }
      const kind = document.createElement("select");
      kind.className = "kind";
      kind.setAttribute("aria-label", `${row.path}: constant or variable`);
      kind.innerHTML = '<option value="constant">Constant</option><option value="variable">Variable</option>';
      kind.value = choice.variable ? "variable" : "constant";
      if (!row.canBeVariable) {
        kind.disabled = true;
        kind.title = row.whyConstant || "";
      }
      const type = document.createElement("select");
      type.className = "type";
      type.setAttribute("aria-label", `${row.path}: type`);
      for (const option of typeOptions(row)) {
        const o = document.createElement("option");
        o.textContent = option;
        type.appendChild(o);
      }
      type.value = choice.type || row.type;
      const value = document.createElement("input");
      value.className = "value";
      value.setAttribute("aria-label", `${row.path}: value or label`);
      const optional = document.createElement("input");
      optional.type = "checkbox";
      optional.className = "optional";
      optional.setAttribute("aria-label", `${row.path}: optional`);
      optional.checked = choice.optional;
      const sync = () => {
        const variable = kind.value === "variable";
        type.disabled = !variable || readOnly;
        optional.disabled = !variable || readOnly;
        value.readOnly = !variable || readOnly;
        const shown = row.type === "listObject" ? "" : JSON.stringify(row.sample);
        value.value = variable ? (choices[row.path] && choices[row.path].label) || "" : shown;
        value.placeholder = variable ? "label shown to the journey author" : row.type === "listObject" ? "its fields below" : "";
      };
      kind.addEventListener("change", () => {
        choices[row.path] = { ...(choices[row.path] || {}), variable: kind.value === "variable" };
        if (choices[row.path].variable && !choices[row.path].label) choices[row.path].label = row.name;
        if (row.type === "listObject") { renderFields(); return; }
        sync();
      });
      value.addEventListener("input", () => {
        if (kind.value === "variable") choices[row.path] = { ...(choices[row.path] || {}), label: value.value };
      });
      type.addEventListener("change", () => { choices[row.path] = { ...(choices[row.path] || {}), type: type.value }; });
      optional.addEventListener("change", () => { choices[row.path] = { ...(choices[row.path] || {}), optional: optional.checked }; });
      $(".f-type", tr).appendChild(type);
      $(".f-kind", tr).appendChild(kind);
      $(".f-value", tr).appendChild(value);
      const valueError = document.createElement("p");
      valueError.className = "field-error";
      valueError.hidden = true;
      $(".f-value", tr).appendChild(valueError);
      $(".f-optional", tr).appendChild(optional);
      if (readOnly) kind.disabled = true;
      sync();
      body.appendChild(tr);
    }
  }

  // Inferred once per text: a paste and the change event that follows it on blur must not
  // rebuild the table (and lose what was typed in it) twice.
  let inferredText = sample.value.trim();
  async function inferFields() {
    const text = sample.value.trim();
    if (text === inferredText) return;
    inferredText = text;
    const slot = $('[data-path="request.sample"] .field-error');
    slot.hidden = true;
    if (!text) { fieldRows = []; renderFields(); return; }
    let parsed;
    try { parsed = JSON.parse(text); } catch (e) {
      slot.hidden = false;
      slot.textContent = "Invalid JSON: " + e.message;
      return;
    }
    const answer = await api("POST", "/payload/fields", { sample: parsed });
    if (answer.ok) {
      fieldRows = answer.data.fields;
      renderFields();
    } else if (answer.data && answer.data.problems && answer.data.problems.length) {
      slot.hidden = false;
      slot.textContent = answer.data.problems.map((p) => `${p.path.replace(/^sample\.?/, "")}: ${p.message}`).join("\n");
    }
  }

  sample.addEventListener("change", inferFields);
  sample.addEventListener("paste", () => setTimeout(inferFields, 0));
  function showPayload() {
    const get = methodSelect.value === "GET";
    $(".payload-only").hidden = get;
    $("#payload-get-note").hidden = !get;
  }
  methodSelect.addEventListener("change", showPayload);
  showPayload();
  renderFields();

  function readJson(textarea, path) {
    const text = textarea.value.trim();
    if (!text) return undefined;
    try { return JSON.parse(text); } catch (e) { throw { path, message: "Invalid JSON: " + e.message }; }
  }

  function readRequest() {
    const parsed = readJson(sample, "request.sample");
    if (parsed === undefined || methodSelect.value === "GET") return undefined;
    const variables = {};
    const known = new Set(fieldRows.map((r) => r.path));
    for (const row of fieldRows) {
      const choice = choices[row.path];
      if (!choice || !choice.variable || !known.has(row.path) || underVariableList(row.path)) continue;
      if (row.type === "object" || !row.canBeVariable) continue;
      const variable = { label: choice.label || "" };
      if (choice.optional) variable.optional = true;
      const declared = (request.variables || {})[row.path];
      if (choice.type && (choice.type !== row.type || (declared && declared.type))) variable.type = choice.type;
      variables[row.path] = variable;
    }
    const result = { ...request, sample: parsed, variables };
    if ($("#f-allow-null").checked) result.allowNull = true; else delete result.allowNull;
    return result;
  }

  // -- the document Save sends ----------------------------------------------------------------
  // Mistakes the page can see before asking the service, worded as the pane words them.
  function localProblems(doc) {
    const problems = [];
    const variables = (doc.request && doc.request.variables) || {};
    for (const [path, variable] of Object.entries(variables)) {
      if (!variable.label || !variable.label.trim()) {
        problems.push({ path: `request.variables.${path}.label`, message: "a variable field needs a label" });
      }
    }
    return problems;
  }

  function buildDocument() {
    // Start from the stored document: fields the pane doesn't show (retry, connector...) and,
    // for an action in a live journey, every read-only field are sent back as they were.
    const doc = JSON.parse(JSON.stringify(original));
    doc.name = nameInput.value.trim();
    const description = $("#f-description").value.trim();
    if (description) doc.description = description; else delete doc.description;
    doc.endpoint = { ...(original.endpoint || {}), url: $("#f-url").value.trim() };
    doc.authentication = readAuthentication();
    if (readOnly) return doc;
    doc.endpoint.method = methodSelect.value;
    if ($("#f-dynamic-path").checked) doc.endpoint.dynamicPath = true; else delete doc.endpoint.dynamicPath;
    doc.endpoint.headers = readParams("headers");
    doc.endpoint.queryParameters = readParams("query");
    const req = readRequest();
    if (req === undefined) delete doc.request; else doc.request = req;
    for (const [key, textarea] of [["response", "#f-response"], ["errorResponse", "#f-error-response"]]) {
      const value = readJson($(textarea), `${key}.sample`);
      if (value === undefined) delete doc[key]; else doc[key] = { sample: value };
    }
    const timeout = $("#f-timeout").value.trim();
    if (timeout) doc.timeout = Number(timeout); else delete doc.timeout;
    return doc;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    let doc;
    try { doc = buildDocument(); } catch (problem) { showProblems([].concat(problem)); return; }
    const mistakes = readOnly ? [] : localProblems(doc);
    if (mistakes.length) { showProblems(mistakes); return; }
    const button = $("#save-action");
    button.disabled = true;
    try {
      const answer = mode === "create"
        ? await api("POST", "/actions", doc)
        : await api("PUT", "/actions/" + encodeURIComponent(currentName), doc);
      if (answer.ok) {
        const name = answer.data.action.name;
        window.location.assign("/console/actions/" + encodeURIComponent(name) + "?saved=1");
        return;
      }
      if (answer.data && answer.data.refused) await showRefused(answer.data);
      else if (answer.data && answer.data.problems && answer.data.problems.length) showProblems(answer.data.problems);
      else showProblems([{ path: "", message: (answer.unreachable ? "Not saved. " : "") + failure(answer) }]);
    } finally {
      button.disabled = false;
    }
  });

  const duplicate = $("#duplicate-action");
  if (duplicate) {
    duplicate.addEventListener("click", async () => {
      const answer = await api("POST", `/actions/${encodeURIComponent(currentName)}/duplicate`, {});
      if (answer.ok) window.location.assign("/console/actions/" + encodeURIComponent(answer.data.action.name));
      else showProblems(answer.data && answer.data.problems && answer.data.problems.length
        ? answer.data.problems : [{ path: "", message: failure(answer) }]);
    });
  }
  const remove = $("#delete-action");
  if (remove) {
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Delete ${currentName}?`)) return;
      const answer = await api("DELETE", `/actions/${encodeURIComponent(currentName)}`);
      if (answer.ok) window.location.assign("/console/actions");
      else showProblems([{ path: "", message: failure(answer) }]);
    });
  }

  // -- closing: × and Esc ask before throwing away unsaved edits ------------------------------
  function formState() {
    return JSON.stringify($$("input, select, textarea", form).map((el) =>
      (el.type === "checkbox" ? el.checked : el.value)).concat([JSON.stringify(choices)]));
  }
  const savedState = formState();
  const close = $("#close-pane");
  function mayClose() {
    return formState() === savedState || window.confirm("Discard your unsaved changes to this action?");
  }
  close.addEventListener("click", (event) => { if (!mayClose()) event.preventDefault(); });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    if ($("dialog[open]")) return;  // Escape closes the open dialog (a call's details), not the pane
    if (mayClose()) window.location.assign(close.href);
  });
  if (mode === "create") nameInput.focus();

  // -- test: Send test request, Check the authentication -------------------------------------
  const testForm = $("#test-form");
  if (!testForm) return;

  function typedValue(input) {
    const type = input.dataset.type || "string";
    const text = input.value;
    if (["string", "dateTime", "dateTimeOnly", "dateOnly"].includes(type)) return text;
    try { return JSON.parse(text); } catch (e) { return text; }
  }

  function testBody() {
    const body = { params: {}, headers: {}, query: {}, credentials: {} };
    $$("[data-test-group]", testForm).forEach((input) => {
      if (input.value === "") return;
      const group = input.dataset.testGroup;
      if (group === "path") body.path = input.value;
      else body[group][input.dataset.testKey] = group === "params" ? typedValue(input) : input.value;
    });
    $$("[data-credential]", testForm).forEach((input) => {
      if (input.value) body.credentials[input.dataset.credential] = input.value;
    });
    return body;
  }

  function showResult(title, ok, payload) {
    $("#test-result").hidden = false;
    const status = $("#test-status");
    status.textContent = title;
    status.className = "result-status " + (ok ? "ok" : "bad");
    $("#test-body").textContent = payload === undefined ? "" : JSON.stringify(payload, null, 2);
  }

  function clearTestErrors() {
    $$(".field-error", testForm).forEach((p) => { p.hidden = true; p.textContent = ""; });
    $$(".invalid", testForm).forEach((el) => el.classList.remove("invalid"));
    $$("[aria-invalid]", testForm).forEach((el) => el.removeAttribute("aria-invalid"));
  }

  // A required variable left empty is the user's mistake to fix at its input: no call is made.
  function missingValues() {
    const missing = $$("[data-test-group][data-required]", testForm).filter((input) => input.value === "");
    missing.forEach((input) => {
      const field = input.closest(".field");
      field.classList.add("invalid");
      input.setAttribute("aria-invalid", "true");
      const slot = $(".field-error", field);
      slot.hidden = false;
      slot.textContent = "required: give a value to send";
    });
    if (missing.length) missing[0].focus();
    return missing.length;
  }

  // Runs one call of the test section at a time: its buttons are busy until the answer comes.
  const testButtons = [$("#send-test"), $("#check-auth")];
  let busy = false;
  async function oneAtATime(button, busyText, work) {
    if (busy) return;
    busy = true;
    const text = button.textContent;
    testButtons.forEach((b) => { b.disabled = true; });
    button.textContent = busyText;
    $("#test-section").setAttribute("aria-busy", "true");
    $("#test-result").hidden = true;
    $("#test-progress").hidden = false;
    try {
      await work();
    } finally {
      busy = false;
      testButtons.forEach((b) => { b.disabled = false; });
      button.textContent = text;
      $("#test-section").removeAttribute("aria-busy");
      $("#test-progress").hidden = true;
    }
  }

  // Recent calls: counts by status and the last calls, each a button opening its details.
  const RECENT_SHOWN = 10;
  async function refreshCalls() {
    const answer = await api("GET", `/actions/${encodeURIComponent(currentName)}/calls?limit=${RECENT_SHOWN}`);
    if (!answer.ok) return;
    const target = $("#call-counts");
    target.innerHTML = "";
    const entries = Object.entries(answer.data.counts);
    if (!entries.length) target.textContent = "none yet";
    for (const [status, n] of entries) {
      const span = document.createElement("span");
      span.className = "count";
      span.textContent = `${status} × ${n}`;
      target.appendChild(span);
      target.appendChild(document.createTextNode(" "));
    }
    const table = $("#pane-calls");
    const body = $("tbody", table);
    body.replaceChildren();
    for (const call of answer.data.calls) {
      const row = body.insertRow();
      const time = new Date(call.at * 1000).toLocaleTimeString();
      // A call recorded before call ids were kept has no details to open.
      if (call.callId) {
        row.dataset.callId = call.callId;
        row.insertCell().append(window.callDetails.button(call.callId, time));
      } else {
        row.insertCell().textContent = time;
      }
      for (const [text, className] of [[call.kind, ""], [call.status, ""], [String(call.attempts), "num"],
        [(call.elapsed * 1000).toFixed(1), "num"]]) {
        const td = row.insertCell();
        td.textContent = text;
        if (className) td.className = className;
      }
    }
    table.hidden = !answer.data.calls.length;
  }

  const callDialog = $("#call-dialog");
  let callOpener = null;
  $("#pane-calls").addEventListener("click", async (event) => {
    const opener = event.target.closest("button.call-link");
    if (!opener) return;
    callOpener = opener;
    callDialog.showModal();
    await window.callDetails.show(callDialog, currentName, opener.dataset.callId);
    document.body.dataset.callShown = opener.dataset.callId;
  });
  $("#call-dialog-close").addEventListener("click", () => callDialog.close());
  // Closed (Close or Escape): the keyboard goes back to the call it came from.
  callDialog.addEventListener("close", () => { if (callOpener) callOpener.focus(); });
  refreshCalls();

  $("#send-test").addEventListener("click", () => {
    if (busy) return;
    clearTestErrors();
    if (missingValues()) return;
    oneAtATime($("#send-test"), "Sending…", sendTest);
  });

  async function sendTest() {
    const answer = await api("POST", `/actions/${encodeURIComponent(currentName)}/test`, testBody());
    if (answer.unreachable) {
      showResult("Not sent: " + UNREACHABLE, false);
      return;
    }
    if (!answer.ok) {
      showResult("Not sent", false, answer.data);
      return;
    }
    const r = answer.data;
    // Without a response example there is nothing to compare with: say so, claim no match.
    const compared = testForm.dataset.responseExample === "yes";
    const structure = !compared ? " · no response example to compare with"
      : r.structure.ok ? " · structure matches the response example"
      : " · structure differs from the response example";
    const title = `${r.status} · ${r.attempts} attempt${r.attempts === 1 ? "" : "s"} · ${Math.round(r.elapsed * 1000)} ms` +
      (r.ok ? structure : "");
    showResult(title, r.ok && r.structure.ok, {
      response: r.response, errorResponse: r.errorResponse, error: r.error, structure: r.structure.problems,
    });
    await refreshCalls();
  }

  $("#check-auth").addEventListener("click", () => oneAtATime($("#check-auth"), "Checking…", async () => {
    const body = { credentials: testBody().credentials };
    const answer = await api("POST", `/actions/${encodeURIComponent(currentName)}/check-authentication`, body);
    if (answer.unreachable) { showResult("Not checked: " + UNREACHABLE, false); return; }
    if (!answer.ok) { showResult("Not checked", false, answer.data); return; }
    showResult(answer.data.ok ? "Authentication OK" : "Authentication failed", answer.data.ok, { message: answer.data.message });
  }));
})();
