// What every page of the portal shares. Text from the store or a user is only ever set with
// textContent (never innerHTML), so a name like <script>...</script> is shown as the text it is.
"use strict";

const starling = {
  // The signed-in user's token: kept for this tab only (sessionStorage), sent as a bearer header, never
  // as a cookie, so no other site can make the browser send it (no cross-site request forgery).
  token() {
    return window.sessionStorage.getItem("starling-token");
  },

  headers(extra) {
    const token = starling.token();
    return { ...(extra || {}), ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  },

  // GET a JSON resource of the data API; throws an Error carrying the service's own message.
  json(url) {
    return starling.send("GET", url);
  },

  // A request with a JSON body (or none); the answer's JSON, or an Error carrying the service's detail
  // and, for a fault in a filter, its line and column (error.fault).
  async send(method, url, body) {
    const init = { method, headers: starling.headers({ Accept: "application/json" }) };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const answer = await fetch(url, init);
    let found = null;
    try { found = starling.parse(await answer.text()); } catch (_) { found = null; }
    if (answer.ok) return found;
    const detail = found && found.detail;
    const error = new Error(`${answer.status}: ${starling.described(detail) || answer.statusText}`);
    error.status = answer.status;
    error.fault = Array.isArray(detail) ? detail.find((d) => d && d.line) : undefined;
    throw error;
  },

  // A refusal's detail in words: a sentence, or FastAPI's list of faults (with a filter's line/column).
  described(detail) {
    if (typeof detail === "string") return detail;
    if (!Array.isArray(detail)) return detail ? JSON.stringify(detail) : "";
    return detail.map((d) => d.line ? `line ${d.line}, column ${d.column}: ${d.msg}`
      : `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
  },

  // JSON with its large integers kept whole: alert and object ids run past 2^53, where a JavaScript
  // number would round them (to another alert's id); such a number is kept as its text.
  parse(text) {
    return JSON.parse(text, (key, value, context) =>
      typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value) && context
        ? context.source : value);
  },

  // A new element with text and attributes.
  el(tag, text, attributes) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    return node;
  },

  // A table row of cells (each a string, a number, null or an element).
  row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.appendChild(cell);
      else td.textContent = starling.shown(cell);
      tr.appendChild(td);
    }
    return tr;
  },

  shown(value, digits) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(digits ?? 4);
    return String(value);
  },

  // Run work every ms milliseconds, one run at a time: a slow answer is not asked for again before it
  // comes. A failure is shown and the next run tries again.
  every(work, ms) {
    let busy = false;
    setInterval(() => {
      if (busy) return;
      busy = true;
      work().catch((e) => starling.problem(e.message)).finally(() => { busy = false; });
    }, ms);
  },

  problem(message) {
    const node = document.getElementById("problem");
    node.textContent = message;
    node.hidden = false;
  },

  objectLink(survey, objectId) {
    return starling.el("a", objectId, {
      href: `/objects/${encodeURIComponent(survey)}/${encodeURIComponent(objectId)}`,
    });
  },
};

// Signing in: a token (made by an operator, `starling token create`) pasted once per tab. The service
// checks it with the controller; the page only shows whom it names.
async function showSession() {
  const who = document.getElementById("who");
  const button = document.getElementById("sign-in");
  if (!who || !button) return;
  let session = { signed_in: false };
  try {
    session = await starling.json("/api/whoami");
  } catch (error) {
    window.sessionStorage.removeItem("starling-token");  // refused: forget it rather than send it again
    who.textContent = `not signed in (${error.message})`;
  }
  if (session.signed_in) who.textContent = `signed in as ${session.user}`;
  else if (!who.textContent) who.textContent = "not signed in";
  button.textContent = session.signed_in ? "sign out" : "sign in";
  button.onclick = () => {
    if (session.signed_in) window.sessionStorage.removeItem("starling-token");
    else {
      const token = window.prompt("Your Starling token");
      if (!token) return;
      window.sessionStorage.setItem("starling-token", token.trim());
    }
    window.location.reload();
  };
}

document.addEventListener("DOMContentLoaded", showSession);
