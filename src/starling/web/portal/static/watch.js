// The "My watchlists" page: the signed-in user's watchlists and watchmaps, kept by the controller and
// reached through this service's /api/my (with the tab's token); a watchlist uploaded from a CSV (read
// here into the targets the controller takes), a watchmap from a MOC or skymap file, a list's targets
// shown, either removed. Target names and descriptions are users' text: shown with textContent only.
"use strict";

const SHOWN_TARGETS = 1000;  // a list may hold a million targets: the page shows the first ones
const byId = (id) => document.getElementById(id);
const page = { session: { signed_in: false } };
const guarded = (work) => () => work().catch((e) => starling.problem(e.message));

// -- a CSV into targets ---------------------------------------------------------------------------

// The rows of a CSV (RFC 4180: fields in double quotes may hold commas, quotes doubled, line breaks),
// each with the line it starts on, so that a fault can say where it is.
function csvRows(text) {
  const rows = [];
  let row = [], field = "", quoted = false, line = 1, start = 1;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === "\n") line += 1;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === "") quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") { i += 1; line += 1; }
      row.push(field);
      rows.push({ cells: row, line: start });
      row = []; field = ""; start = line;
    } else field += c;
  }
  if (field !== "" || row.length) { row.push(field); rows.push({ cells: row, line: start }); }
  return rows.filter((r) => r.cells.some((cell) => cell.trim() !== ""));
}

// The targets of a CSV whose first row names its columns; an Error naming the line at fault.
function csvTargets(text) {
  const [header, ...rows] = csvRows(text.replace(/^\ufeff/, ""));  // a spreadsheet's byte-order mark
  if (!header) throw new Error("the CSV is empty: a header line (name,ra,dec) and a line per target");
  const names = header.cells.map((cell) => cell.trim().toLowerCase());
  const column = (...wanted) => names.findIndex((name) => wanted.includes(name));
  const [name, ra, dec, radius] = [column("name"), column("ra"), column("dec"), column("radius_arcsec", "radius")];
  if (name < 0 || ra < 0 || dec < 0) {
    throw new Error(`the CSV's first line names the columns: name, ra, dec (and radius_arcsec); it has ${names.join(", ")}`);
  }
  if (!rows.length) throw new Error("the CSV has no target: a line per target after the header");
  return rows.map(({ cells, line }) => {
    const number = (index, what) => {
      const text = (cells[index] ?? "").trim();
      const value = Number(text);
      if (text === "" || !Number.isFinite(value)) throw new Error(`line ${line}: ${what} is not a number: ${JSON.stringify(text)}`);
      return value;
    };
    const target = { name: (cells[name] ?? "").trim(), ra: number(ra, "ra"), dec: number(dec, "dec") };
    if (!target.name) throw new Error(`line ${line}: a target needs a name`);
    if (radius >= 0 && (cells[radius] ?? "").trim() !== "") target.radius_arcsec = number(radius, "radius");
    return target;
  });
}

// -- reading files ---------------------------------------------------------------------------------

// A file's bytes in base64 (as the controller takes a FITS file), without its data: URL prefix.
function base64Of(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).slice(String(reader.result).indexOf(",") + 1));
    reader.onerror = () => reject(new Error(`cannot read ${file.name}: ${reader.error}`));
    reader.readAsDataURL(file);
  });
}

function showStatus(id, className, text) {
  const status = byId(id);
  status.className = className;
  status.textContent = text;
}

function uploaded(made, what) {
  return `${made.name}: ${made.replaced ? "replaced" : what} (pipeline version ${made.version}`
    + `${made.live ? "" : "; the ingest replicas apply it when they can"})`;
}

// -- the lists ---------------------------------------------------------------------------------------

function actions(...buttons) {
  const cell = starling.el("span");
  for (const [action, text, work] of buttons) {
    const button = starling.el("button", text, { type: "button", "data-action": action });
    button.addEventListener("click", guarded(work));
    cell.appendChild(button);
  }
  return cell;
}

async function remove(kind, noun, name) {
  if (!window.confirm(`Remove the ${noun} ${name}? Alerts already marked keep their marks.`)) return;
  await starling.send("DELETE", `/api/my/${kind}/${encodeURIComponent(name)}`);
  if (kind === "watchlists" && byId("targets-of").textContent === name) byId("targets-section").hidden = true;
  await refresh();
}

async function showTargets(name) {
  const list = await starling.json(`/api/my/watchlists/${encodeURIComponent(name)}`);
  const radius = list.default_radius_arcsec ?? 2;
  const shown = list.targets.slice(0, SHOWN_TARGETS);
  const body = document.querySelector("#targets tbody");
  body.replaceChildren(...shown.map((t) =>
    starling.row([t.name, starling.shown(t.ra, 6), starling.shown(t.dec, 6), String(t.radius_arcsec ?? radius)])));
  byId("targets-of").textContent = list.name;
  byId("targets-note").textContent = list.targets.length > shown.length
    ? `(the first ${shown.length} of ${list.targets.length})` : `(${list.targets.length})`;
  byId("targets-section").hidden = false;
}

function fillTable(id, entries, cells) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...entries.map((entry) => {
    const tr = starling.row(cells(entry));
    tr.dataset.name = entry.name;
    return tr;
  }));
  byId(id).hidden = !entries.length;
  byId(`${id}-empty`).hidden = entries.length > 0;
}

async function refresh() {
  const [lists, maps] = await Promise.all([
    starling.json("/api/my/watchlists"), starling.json("/api/my/watchmaps")]);
  fillTable("lists", lists, (l) => [l.name, l.owner, l.targets, l.default_radius_arcsec, actions(
    ["targets", "targets", () => showTargets(l.name)],
    ["remove", "remove", () => remove("watchlists", "watchlist", l.name)])]);
  fillTable("maps", maps, (m) => [m.name, m.owner, m.cells, m.description, actions(
    ["remove", "remove", () => remove("watchmaps", "watchmap", m.name)])]);
}

// -- uploads -----------------------------------------------------------------------------------------

async function uploadList() {
  const name = byId("list-name").value.trim();
  let targets;
  try {
    targets = csvTargets(byId("list-csv").value);
  } catch (error) {
    return showStatus("list-status", "problem", error.message);
  }
  const body = { name, default_radius_arcsec: Number(byId("list-radius").value), targets };
  showStatus("list-status", "hint", `uploading ${targets.length} targets…`);
  try {
    const made = await starling.send("PUT", `/api/my/watchlists/${encodeURIComponent(name)}`, body);
    showStatus("list-status", "valid", uploaded(made, `${targets.length} targets uploaded`));
  } catch (error) {
    return showStatus("list-status", "problem", error.message);
  }
  await refresh();
  await showTargets(name);
}

async function uploadMap() {
  const name = byId("map-name").value.trim();
  const kind = byId("map-kind").value;
  const file = byId("map-file").files[0];
  const body = { name, kind, description: byId("map-description").value };
  showStatus("map-status", "hint", `reading ${file.name}…`);
  try {
    if (kind === "moc-json") body.moc = JSON.parse(await file.text());
    else body.fits_base64 = await base64Of(file);
    if (kind === "skymap") body.credible_level = Number(byId("map-level").value);
  } catch (error) {
    return showStatus("map-status", "problem", `cannot read ${file.name}: ${error.message}`);
  }
  showStatus("map-status", "hint", "uploading…");
  try {
    const made = await starling.send("PUT", `/api/my/watchmaps/${encodeURIComponent(name)}`, body);
    showStatus("map-status", "valid", uploaded(made, "uploaded"));
  } catch (error) {
    return showStatus("map-status", "problem", error.message);
  }
  await refresh();
}

function wire() {
  // A chosen CSV file fills the text box: what is uploaded is what the user sees (and may correct).
  byId("list-file").addEventListener("change", guarded(async () => {
    const file = byId("list-file").files[0];
    if (file) byId("list-csv").value = await file.text();
  }));
  byId("map-kind").addEventListener("change", (event) => {
    byId("level-label").hidden = event.target.value !== "skymap";
  });
  for (const [form, upload] of [["list-form", uploadList], ["map-form", uploadMap]]) {
    byId(form).addEventListener("submit", (event) => {
      event.preventDefault();
      guarded(upload)();
    });
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  wire();
  try {
    page.session = await starling.json("/api/whoami").catch(() => ({ signed_in: false }));
    const signedIn = Boolean(page.session.signed_in);
    byId("signed-out").hidden = signedIn;
    for (const id of ["lists-section", "maps-section", "upload-section"]) byId(id).hidden = !signedIn;
    if (signedIn) await refresh();
    document.body.dataset.loaded = "yes";
  } catch (error) {
    starling.problem(error.message);
    document.body.dataset.loaded = "failed";
  }
});
