// The "My filters" page: the signed-in user's filters with their live counts, an editor checked as one
// types (the fields listed beside it), a trial on the stored alerts, making a filter live, pausing and
// removing one, and the latest matches of a chosen filter as they are stored. The user's filters are the
// controller's, reached through this service's /api/my (with the tab's token); check and try are this
// service's own and need no token. Whatever a user typed is shown with textContent, never as HTML.
"use strict";

const POLL_MS = 3000;  // the counts and a followed filter's matches, refreshed without a reload
const CHECK_DELAY_MS = 350;  // a check once typing pauses, not one per key
const SHOWN_MATCHES = 200;
const byId = (id) => document.getElementById(id);
const page = { session: { signed_in: false }, rows: new Map(), following: null, checks: 0, editing: null };

// -- the editor: checked as one types ------------------------------------------------------------

function lineColumn(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return [line, offset - before.lastIndexOf("\n")];
}

function offsetOf(text, line, column) {
  const lines = text.split("\n");
  let offset = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i += 1) offset += lines[i].length + 1;
  return Math.min(offset + column - 1, text.length);
}

function showCaret() {
  const editor = byId("expression");
  const [line, column] = lineColumn(editor.value, editor.selectionStart);
  byId("caret").textContent = `line ${line}, column ${column}`;
}

// The fault's line of the text, the character at its column marked, and a ^ under it.
function showFault(text, fault) {
  const status = byId("check");
  const where = byId("fault");
  status.className = "problem";
  status.textContent = `line ${fault.line}, column ${fault.column}: ${fault.message ?? fault.msg}`;
  status.dataset.line = String(fault.line);
  status.dataset.column = String(fault.column);
  const lineText = text.split("\n")[fault.line - 1] ?? "";
  const before = lineText.slice(0, fault.column - 1);
  where.replaceChildren(document.createTextNode(before),
    starling.el("mark", lineText.charAt(fault.column - 1) || " "),
    document.createTextNode(`${lineText.slice(fault.column)}\n${before.replace(/[^\t]/g, " ")}^`));
  where.hidden = false;
  byId("to-fault").hidden = false;
  byId("to-fault").onclick = () => {
    const editor = byId("expression");
    const at = offsetOf(editor.value, fault.line, fault.column);
    editor.focus();
    editor.setSelectionRange(at, Math.min(at + 1, editor.value.length));
    showCaret();
  };
}

function showValid(note) {
  const status = byId("check");
  status.className = note ? "hint" : "valid";
  status.textContent = note || "a valid filter";
  delete status.dataset.line;
  delete status.dataset.column;
  byId("fault").hidden = true;
  byId("to-fault").hidden = true;
}

async function check() {
  const expression = byId("expression").value;
  const asked = ++page.checks;
  if (!expression.trim()) return showValid("write a condition on the fields listed beside");
  const answer = await starling.send("POST", "/api/filters/check", { expression });
  if (asked !== page.checks) return;  // the text changed meanwhile: a newer check is on its way
  if (answer.ok) showValid();
  else showFault(expression, answer);
}

function checkSoon() {
  clearTimeout(page.checkTimer);
  page.checkTimer = setTimeout(() => check().catch((e) => starling.problem(e.message)), CHECK_DELAY_MS);
}

// -- the fields beside the editor ----------------------------------------------------------------

async function fields() {
  const body = document.querySelector("#fields tbody");
  for (const field of await starling.json("/api/fields")) {
    const name = starling.el("button", field.name, { type: "button", class: "field" });
    name.addEventListener("click", () => {
      const editor = byId("expression");
      editor.setRangeText(field.name, editor.selectionStart, editor.selectionEnd, "end");
      editor.focus();
      showCaret();
      checkSoon();
    });
    const named = starling.el("div");
    named.append(name, starling.el("div", field.description, { class: "muted" }));
    const tr = starling.row([named, field.type, field.unit]);
    tr.dataset.field = field.name;
    body.appendChild(tr);
  }
  byId("field-search").addEventListener("input", (event) => {
    const wanted = event.target.value.trim().toLowerCase();
    for (const tr of body.children) tr.hidden = Boolean(wanted) && !tr.textContent.toLowerCase().includes(wanted);
  });
}

// -- trying on history ---------------------------------------------------------------------------

async function tryOnHistory() {
  const expression = byId("expression").value;
  const summary = byId("tried-summary");
  const table = byId("tried");
  summary.className = "hint";
  summary.textContent = "trying on the stored alerts…";
  table.hidden = true;
  let tried;
  try {
    tried = await starling.send("POST", "/api/filters/try", { expression, limit: Number(byId("try-limit").value) });
  } catch (error) {
    if (error.fault) showFault(expression, error.fault);
    summary.className = "problem";
    summary.textContent = error.message;
    return;
  }
  const span = tried.alerts_examined ? `, MJD ${tried.oldest_mjd.toFixed(5)} to ${tried.newest_mjd.toFixed(5)}` : "";
  summary.className = "";
  summary.textContent = `${tried.matched} of the latest ${tried.alerts_examined} stored alerts matched `
    + `(${(100 * tried.fraction).toFixed(2)} %${span})`;
  Object.assign(summary.dataset, { matched: tried.matched, examined: tried.alerts_examined });
  const body = table.querySelector("tbody");
  body.replaceChildren(...tried.sample.map((a) =>
    starling.row([a.survey, a.alert_id, starling.objectLink(a.survey, a.object_id), starling.shown(a.mjd, 5)])));
  table.hidden = !tried.sample.length;
}

// -- the user's filters --------------------------------------------------------------------------

// How the controller names the filter in a path: a user's own name; an operator's token sees everyone's
// filters and names each by its component (<user>.<name>).
function pathName(filter) {
  return page.session.role === "operator" ? filter.id : filter.name;
}

async function act(filter, what) {
  const name = encodeURIComponent(pathName(filter));
  if (what === "remove") {
    if (!window.confirm(`Remove the filter ${filter.name}? Its stored matches stay.`)) return;
    await starling.send("DELETE", `/api/my/filters/${name}`);
  } else {
    await starling.send("POST", `/api/my/filters/${name}/${what}`);
  }
  await refreshMine();
}

function newRow(filter) {
  const tr = starling.row(["", "", "", "", "", "", "", "", ""]);
  tr.dataset.filter = filter.name;
  tr.cells[1].appendChild(starling.el("code"));
  const buttons = [["toggle", ""], ["change", "change"], ["remove", "remove"], ["follow", "matches"]].map(
    ([role, text]) => starling.el("button", text, { type: "button", "data-action": role }));
  tr.cells[8].append(...buttons);
  const guarded = (work) => () => work().catch((e) => starling.problem(e.message));
  buttons[0].addEventListener("click", guarded(() => act(tr.filter, tr.filter.paused ? "resume" : "pause")));
  buttons[1].addEventListener("click", () => startChange(tr.filter));
  buttons[2].addEventListener("click", guarded(() => act(tr.filter, "remove")));
  buttons[3].addEventListener("click", guarded(() => follow(tr.filter.id)));
  return tr;
}

// -- changing a live filter's condition: written in the editor (checked as typed), then saved --------

function startChange(filter) {
  page.editing = filter;
  const editor = byId("expression");
  editor.value = filter.expression ?? "";
  byId("change-name").textContent = filter.name;
  byId("change-filter").hidden = false;
  byId("change-status").textContent = "";
  editor.scrollIntoView({ block: "center" });
  editor.focus();
  checkSoon();
}

function stopChange() {
  page.editing = null;
  byId("change-filter").hidden = true;
}

async function saveChange() {
  const filter = page.editing;
  if (!filter) return;
  const status = byId("change-status");
  const expression = byId("expression").value;
  status.className = "hint";
  status.textContent = "saving…";
  try {
    const path = `/api/my/filters/${encodeURIComponent(pathName(filter))}`;
    const changed = await starling.send("PATCH", path, { expression });
    status.className = "valid";
    status.textContent = `${filter.name} changed (pipeline version ${changed.version}`
      + `${changed.live ? "" : "; some replicas apply it when they can"})`;
  } catch (error) {
    if (error.fault) showFault(expression, error.fault);
    status.className = "problem";
    status.textContent = error.message;
    return;
  }
  stopChange();
  await refreshMine();
}

function fillRow(tr, filter) {
  tr.filter = filter;
  const counts = filter.counts;
  const outputs = filter.outputs.map((o) => o.type === "webhook" ? `webhook ${o.url}` : o.type).join(", ");
  const values = [filter.name, null, filter.paused ? "paused" : "live", counts.seen, counts.matched,
    counts.delivered, counts.failed_deliveries, outputs || "none"];
  values.forEach((value, index) => { if (value !== null) tr.cells[index].textContent = starling.shown(value); });
  tr.cells[1].firstChild.textContent = filter.expression ?? "";
  tr.cells[2].dataset.state = filter.paused ? "paused" : "live";
  ["seen", "matched", "delivered", "failed"].forEach((name, i) => { tr.cells[3 + i].dataset.count = name; });
  tr.querySelector('[data-action="toggle"]').textContent = filter.paused ? "resume" : "pause";
}

// The rows are updated in place (not rebuilt), so that a button stays the same button between refreshes.
async function refreshMine() {
  let filters;
  try {
    filters = await starling.send("GET", "/api/my/filters");
  } catch (error) {
    byId("mine-updated").textContent = `(not refreshed: ${error.message})`;
    return;
  }
  const body = document.querySelector("#mine tbody");
  const names = new Set(filters.map((f) => f.name));
  for (const [name, tr] of page.rows) if (!names.has(name)) { tr.remove(); page.rows.delete(name); }
  for (const filter of filters) {
    if (!page.rows.has(filter.name)) {
      page.rows.set(filter.name, newRow(filter));
      body.appendChild(page.rows.get(filter.name));
    }
    fillRow(page.rows.get(filter.name), filter);
  }
  byId("mine-empty").hidden = filters.length > 0;
  byId("mine").hidden = !filters.length;
  byId("mine-updated").textContent = `(counts at ${new Date().toLocaleTimeString()})`;
}

function chosenOutputs() {
  const kind = byId("live-output").value;
  if (kind === "kafka") return [{ type: "kafka", format: "json" }];
  if (kind === "webhook") return [{ type: "webhook", url: byId("live-webhook").value.trim() }];
  return [];
}

async function makeLive() {
  const status = byId("live-status");
  const name = byId("live-name").value.trim();
  const body = { name, expression: byId("expression").value, outputs: chosenOutputs() };
  status.className = "hint";
  status.textContent = "submitting…";
  try {
    const made = await starling.send("POST", "/api/my/filters", body);
    status.className = "valid";
    status.textContent = `${made.name} is live (pipeline version ${made.version}`
      + `${made.live ? "" : "; some replicas apply it when they can"})`;
  } catch (error) {
    if (error.fault) showFault(body.expression, error.fault);
    status.className = "problem";
    status.textContent = error.message;
    return;
  }
  await refreshMine();
  await follow(page.session.role === "operator" ? name : `${page.session.user}.${name}`);
}

// -- a followed filter's latest matches ----------------------------------------------------------

function addMatch(match) {
  const key = `${match.survey}/${match.alert_id}`;
  const followed = page.following;
  if (followed.seen.has(key)) return;
  followed.seen.add(key);
  followed.since = Math.max(followed.since, match.mjd);
  const tr = starling.row([starling.shown(match.mjd, 5), match.survey, match.alert_id,
    starling.objectLink(match.survey, match.object_id)]);
  tr.dataset.alert = key;
  const body = document.querySelector("#matches tbody");
  body.prepend(tr);  // newest on top
  while (body.children.length > SHOWN_MATCHES) body.lastChild.remove();
  byId("matches-section").dataset.count = String(followed.seen.size);
  byId("matches-note").textContent = `(${followed.seen.size} since this page started following it)`;
}

// The newest stored matches first, through TAP (the matches API reads forward from a time), oldest of
// them added first so that the newest ends on top.
async function newestMatches(id) {
  const query = "SELECT TOP 20 survey, alert_id, object_id, mjd FROM starling.filter_matches "
    + `WHERE filter = '${id.replace(/'/g, "''")}' ORDER BY mjd DESC, survey DESC, alert_id DESC`;
  const answer = await fetch("/tap/sync", {
    method: "POST",
    headers: starling.headers(),
    body: new URLSearchParams({ REQUEST: "doQuery", LANG: "ADQL", QUERY: query, RESPONSEFORMAT: "json" }),
  });
  if (!answer.ok) return [];
  const table = starling.parse(await answer.text());
  const names = table.metadata.map((c) => c.name);
  return table.data.map((row) => Object.fromEntries(names.map((n, i) => [n, row[i]]))).reverse();
}

async function follow(id) {
  page.following = { id, since: 0, seen: new Set() };
  byId("matches-of").textContent = id;
  byId("matches-note").textContent = "";
  document.querySelector("#matches tbody").replaceChildren();
  byId("matches-section").hidden = false;
  byId("matches-section").dataset.count = "0";
  for (const match of await newestMatches(id)) if (page.following.id === id) addMatch(match);
  await pollMatches();
}

// Matches observed at most LATE_DAYS before the newest one shown, a page at a time: the stream stores
// matches in its own order (one partition's batch before another's), so a match of an earlier time can
// be stored after a later one; those read again are skipped (the seen set).
const LATE_DAYS = 1 / 24;

async function pollMatches() {
  const followed = page.following;
  if (!followed) return;
  const since = Math.max(0, followed.since - LATE_DAYS);
  for (let offset = 0, pages = 0; pages < 50; pages += 1) {
    const query = new URLSearchParams({ since, limit: 500, offset });
    let found;
    try {
      found = await starling.json(`/api/filters/${encodeURIComponent(followed.id)}/matches?${query}`);
    } catch (error) {
      if (!error.message.startsWith("404")) throw error;
      byId("matches-note").textContent = "(no match stored yet: new ones appear here)";
      return;
    }
    if (page.following !== followed) return;
    for (const match of found.matches) addMatch(match);
    if (!found.more) return;
    offset += found.matches.length;
  }
}

function wire() {
  const editor = byId("expression");
  editor.addEventListener("input", () => { showCaret(); checkSoon(); });
  for (const event of ["keyup", "click", "select"]) editor.addEventListener(event, showCaret);
  byId("try").addEventListener("click", () => tryOnHistory().catch((e) => starling.problem(e.message)));
  byId("live-output").addEventListener("change", (event) => {
    byId("webhook-label").hidden = event.target.value !== "webhook";
    byId("live-webhook").required = event.target.value === "webhook";
  });
  byId("make-live").addEventListener("submit", (event) => {
    event.preventDefault();
    makeLive().catch((e) => starling.problem(e.message));
  });
  byId("change-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    saveChange().catch((e) => starling.problem(e.message));
  });
  byId("cancel-change").addEventListener("click", stopChange);
  starling.every(pollMatches, POLL_MS);
}

document.addEventListener("DOMContentLoaded", async () => {
  wire();
  try {
    page.session = await starling.json("/api/whoami").catch(() => ({ signed_in: false }));
    const signedIn = Boolean(page.session.signed_in);
    byId("signed-out").hidden = signedIn;
    byId("make-live").hidden = !signedIn;
    await fields();
    if (signedIn) {
      await refreshMine();
      starling.every(refreshMine, POLL_MS);
    }
    document.body.dataset.loaded = "yes";
  } catch (error) {
    starling.problem(error.message);
    document.body.dataset.loaded = "failed";
  }
});
