// The object page's panel "Why did a filter (not) fire?": one of the object's alerts and a condition
// (one of the signed-in user's filters, or one typed here), explained by the data API
// (/api/alerts/<survey>/<alert_id>/explain): the verdict, and the value on that alert of each part of
// the condition as a tree, the parts that decided the verdict marked. Every part's text, the user's
// condition and their filters' names are shown with textContent, never as HTML.
"use strict";

const explainPanel = (() => {
  const byId = (id) => document.getElementById(id);
  const state = { alerts: [], session: { signed_in: false }, expressions: new Map(), asked: 0, typed: "" };
  const VERDICTS = {
    true: ["passed", "the condition is true on this alert: the filter lets it through"],
    false: ["kept out", "the condition is false on this alert: the filter keeps it out"],
    null: ["unknown (NULL)", "a part the verdict rests on is unknown (a NULL value): the filter keeps it out"],
  };

  // JSON with integers past 2^53 (alert ids, sums of them) kept whole, as BigInt.
  function parse(text) {
    return JSON.parse(text, (key, value, context) =>
      typeof value === "number" && !Number.isSafeInteger(value) && Number.isInteger(value)
        && context && /^-?\d+$/.test(context.source) ? BigInt(context.source) : value);
  }

  // The explanation, or an Error with the service's message and, for a fault in the condition, its
  // line and column (error.fault).
  async function ask(alert, parameters) {
    const url = `/api/alerts/${encodeURIComponent(alert.survey)}/${encodeURIComponent(alert.alert_id)}`
      + `/explain?${new URLSearchParams(parameters)}`;
    const answer = await fetch(url, { headers: starling.headers({ Accept: "application/json" }) });
    let body = null;
    try { body = parse(await answer.text()); } catch (_) { body = null; }
    if (answer.ok) return body;
    const detail = body && body.detail;
    const said = typeof detail === "string" ? detail : Array.isArray(detail)
      ? detail.map((d) => (d.line ? `line ${d.line}, column ${d.column}: ${d.msg}` : d.msg)).join("; ")
      : answer.statusText;
    const error = new Error(`${answer.status}: ${said}`);
    error.fault = Array.isArray(detail) ? detail.find((d) => d && d.line) : undefined;
    throw error;
  }

  // A condition's value: true, false or unknown; a value's: the number, 'the string', or NULL.
  function shown(part) {
    const value = part.value;
    if (part.kind === "condition") return value === null ? "unknown" : String(value);
    if (value === null) return "NULL";
    if (typeof value === "string") return `'${value}'`;
    if (typeof value === "number" && !Number.isInteger(value)) return String(Number(value.toPrecision(12)));
    return String(value);
  }

  // The children that decided a condition made of conditions (AND, OR, NOT): those whose value is its
  // own (the false ones of a false AND, the true ones of a true OR, the unknown ones of an unknown AND
  // or OR, all of them when all agree), or a NOT's one child, whose value it turns over. None for a
  // condition on values (a comparison, BETWEEN, IN, LIKE, IS NULL): that is a cut.
  function deciders(part) {
    const children = part.children;
    if (part.kind !== "condition" || !children.length || children.some((c) => c.kind !== "condition")) return [];
    const same = children.filter((c) => c.value === part.value);
    return same.length || children.length !== 1 ? same : children;
  }

  function partNode(part, decisive, cuts) {
    const type = part.value === null ? "null" : typeof part.value;
    const li = starling.el("li", null, { class: `part ${part.kind}`, "data-kind": part.kind,
      "data-type": type, "data-value": part.value === null ? "null" : String(part.value) });
    const chosen = decisive ? deciders(part) : [];
    li.classList.toggle("decisive", decisive);
    if (decisive && part.kind === "condition" && !chosen.length) {
      li.classList.add("cut");
      cuts.push(part);
    }
    const look = part.kind !== "condition" ? type : part.value === null ? "unknown" : String(part.value);
    const line = starling.el("div", null, { class: "part-line" });
    line.append(starling.el("code", part.text), starling.el("span", shown(part), { class: `value is-${look}` }));
    li.appendChild(line);
    if (part.children.length) {
      const list = starling.el("ul");
      for (const child of part.children) list.appendChild(partNode(child, chosen.includes(child), cuts));
      li.appendChild(list);
    }
    return li;
  }

  function showVerdict(answer, cuts) {
    const [word, meaning] = VERDICTS[String(answer.verdict)];
    const verdict = byId("explain-verdict");
    verdict.dataset.verdict = String(answer.verdict);
    verdict.className = `verdict verdict-${answer.verdict === null ? "unknown" : answer.verdict}`;
    verdict.replaceChildren(starling.el("strong", word), document.createTextNode(`: ${meaning}`));
    if (!cuts.length) return;
    verdict.appendChild(document.createTextNode(answer.verdict === true ? "; let through by " : "; decided by "));
    cuts.forEach((cut, i) => {
      if (i) verdict.appendChild(document.createTextNode(", "));
      verdict.append(starling.el("code", cut.text), document.createTextNode(` (${shown(cut)})`));
    });
  }

  function showAnswer(alert, answer) {
    const cuts = [];
    const which = answer.filter === null ? "the condition typed" : `your filter ${answer.filter}`;
    byId("explain-what").textContent = `alert ${alert.alert_id} (MJD ${alert.mjd.toFixed(5)}, band `
      + `${alert.band ?? "none"}), ${which}`;
    byId("explain-tree").replaceChildren(partNode(answer.parts, true, cuts));
    showVerdict(answer, cuts);
    byId("explain-fields").querySelector("tbody").replaceChildren(...Object.entries(answer.fields)
      .map(([name, value]) => starling.row([name, shown({ kind: "value", value })])));
    byId("explain-query").textContent = answer.query;
    byId("explain-result").hidden = false;
  }

  // The fault's message, and its line of the condition with the character at its column marked.
  function showProblem(error, expression) {
    const problem = byId("explain-problem");
    problem.textContent = error.message;
    problem.hidden = false;
    const fault = error.fault;
    const where = byId("explain-fault");
    if (!fault || expression === undefined) return;
    const lineText = expression.split("\n")[fault.line - 1] ?? "";
    const before = lineText.slice(0, fault.column - 1);
    where.replaceChildren(document.createTextNode(before),
      starling.el("mark", lineText.charAt(fault.column - 1) || " "),
      document.createTextNode(`${lineText.slice(fault.column)}\n${before.replace(/[^\t]/g, " ")}^`));
    where.hidden = false;
  }

  async function run() {
    const alert = state.alerts[Number(byId("explain-alert").value)];
    const name = byId("explain-filter").value;
    const typed = byId("explain-expression").value;
    const status = byId("explain-status");
    const asked = ++state.asked;
    byId("explain-result").hidden = true;
    byId("explain-problem").hidden = true;
    byId("explain-fault").hidden = true;
    if (!alert) return;
    if (!name && !typed.trim()) {
      status.dataset.state = "idle";
      status.textContent = "type a condition, or choose one of your filters";
      return;
    }
    status.dataset.state = "asking";
    status.textContent = "asking…";
    let answer;
    try {
      answer = await ask(alert, name ? { filter: name } : { expression: typed });
    } catch (error) {
      if (asked !== state.asked) return;  // another was asked meanwhile: its answer is the one shown
      showProblem(error, typed);
      status.textContent = "";
      status.dataset.state = "failed";
      return;
    }
    if (asked !== state.asked) return;
    showAnswer(alert, answer);
    status.textContent = "";
    status.dataset.state = "done";
  }

  // The object's alerts (newest first): the latest one chosen.
  function setAlerts(alerts) {
    state.alerts = alerts;
    byId("explain-alert").replaceChildren(...alerts.map((alert, i) => starling.el("option",
      `${alert.alert_id} · MJD ${alert.mjd.toFixed(5)} · ${alert.band ?? "no band"}`
      + ` · mag ${starling.shown(alert.mag, 3) || "none"}`, { value: String(i) })));
  }

  // The "explain" of a row of the alerts list: this alert, explained at once if there is a condition.
  function choose(alert) {
    byId("explain-alert").value = String(state.alerts.indexOf(alert));
    byId("explain-section").scrollIntoView({ block: "start" });
    if (byId("explain-filter").value || byId("explain-expression").value.trim()) {
      run().catch((e) => starling.problem(e.message));
    } else {
      byId("explain-expression").focus();
    }
  }

  // The signed-in user's filters to choose from: their own names (an operator's token: every filter,
  // by its component name, <user>.<name>, as the controller names it).
  async function load() {
    const note = byId("explain-filters-note");
    const chooser = byId("explain-filter");
    state.session = await starling.json("/api/whoami").catch(() => ({ signed_in: false }));
    if (!state.session.signed_in) {
      note.textContent = "sign in to explain by one of your filters";
      return;
    }
    let filters;
    try {
      filters = await starling.json("/api/my/filters");
    } catch (error) {
      note.textContent = `your filters cannot be listed now (${error.message})`;
      return;
    }
    for (const filter of filters) {
      const name = state.session.role === "operator" ? filter.id : filter.name;
      state.expressions.set(name, filter.expression);
      chooser.appendChild(starling.el("option", name, { value: name }));
    }
    note.textContent = filters.length ? "" : "you have no filters yet (make one under my filters)";
  }

  document.addEventListener("DOMContentLoaded", () => {
    byId("explain-form").addEventListener("submit", (event) => {
      event.preventDefault();
      run().catch((e) => starling.problem(e.message));
    });
    // A filter chosen: its condition shown (not to be edited here); the typed one back when none is.
    byId("explain-filter").addEventListener("change", (event) => {
      const editor = byId("explain-expression");
      const name = event.target.value;
      if (name && !editor.readOnly) state.typed = editor.value;
      editor.readOnly = Boolean(name);
      editor.value = name ? state.expressions.get(name) ?? "" : state.typed ?? "";
    });
  });

  return { load, setAlerts, choose };
})();
