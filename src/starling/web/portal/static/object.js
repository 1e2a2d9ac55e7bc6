// The object page: its facts, light curve (uPlot), cutouts, annotations, matches and alerts, all read
// from the data API (/api); why a filter did (not) pass one of its alerts: explain.js. The page's
// address is /objects/<survey>/<object_id>.
"use strict";

const [, , survey, objectId] = window.location.pathname.split("/").map(decodeURIComponent);
const base = `/api/objects/${encodeURIComponent(survey)}/${encodeURIComponent(objectId)}`;
const BAND_COLOURS = {
  u: "#6a3d9a", g: "#1b9e3e", r: "#d62728", i: "#8c564b", z: "#555555", y: "#e6a800",
};

function links(object) {
  const where = `${object.ra.toFixed(6)} ${object.dec >= 0 ? "+" : ""}${object.dec.toFixed(6)}`;
  const out = [
    ["SIMBAD", `https://simbad.cds.unistra.fr/simbad/sim-coo?Coord=${encodeURIComponent(where)}&Radius=5&Radius.unit=arcsec`],
    ["TNS", `https://www.wis-tns.org/search?ra=${object.ra}&decl=${object.dec}&radius=5&coords_unit=arcsec`],
    ["NED", `https://ned.ipac.caltech.edu/conesearch?coordinates=${encodeURIComponent(where)}&radius=0.0833`],
  ];
  if (object.survey === "ztf") {
    out.push(["ZTF light curves (IRSA)",
      `https://irsa.ipac.caltech.edu/cgi-bin/ZTF/nph_light_curves?POS=CIRCLE%20${object.ra}%20${object.dec}%200.0014&FORMAT=html`]);
  }
  const holder = document.getElementById("links");
  for (const [name, href] of out) {
    holder.appendChild(starling.el("a", name, { href, rel: "noopener", target: "_blank" }));
    holder.appendChild(document.createTextNode(" · "));
  }
  holder.lastChild.remove();
}

function facts(object) {
  document.getElementById("object-name").textContent = `${object.object_id} (${object.survey})`;
  document.title = `Starling: ${object.object_id}`;
  const shown = [
    ["RA", `${object.ra.toFixed(6)}°`], ["Dec", `${object.dec.toFixed(6)}°`],
    ["first alert", object.first_mjd.toFixed(5)], ["latest alert", object.last_mjd.toFixed(5)],
    ["alerts", object.n_alerts], ["detections", object.n_detections],
    ["upper limits", object.n_upper_limits], ["forced points", object.n_forced],
  ];
  const list = document.getElementById("facts");
  for (const [name, value] of shown) {
    list.appendChild(starling.el("dt", name));
    list.appendChild(starling.el("dd", value, { "data-fact": name }));
  }
}

// What an annotator found, laid out: fields as a list of names and values (nested ones within), a list
// of records (crossmatch candidates, watchlist hits) as a small table, numbers to 4 decimals. All text is
// set as text: names and values users uploaded (watchlist targets) are never markup.
function annotationView(value) {
  if (value === null || value === undefined) {
    return starling.el("span", "—", { class: "muted", title: "absent: it could not be computed for this alert" });
  }
  if (typeof value !== "object") {
    return starling.el("span", starling.shown(value), { class: "value" });
  }
  if (Array.isArray(value)) {
    const records = value.length > 0 && value.every((v) => v && typeof v === "object" && !Array.isArray(v));
    if (!records) return starling.el("span", value.map((v) => starling.shown(v)).join(", "), { class: "value" });
    const keys = [...new Set(value.flatMap((v) => Object.keys(v)))];
    const table = starling.el("table", null, { class: "records" });
    const head = starling.el("tr");
    for (const key of keys) head.appendChild(starling.el("th", key));
    table.appendChild(head);
    for (const record of value) table.appendChild(starling.row(keys.map((key) => annotationView(record[key]))));
    return table;
  }
  const list = starling.el("dl", null, { class: "fields" });
  for (const [key, inner] of Object.entries(value)) {
    list.appendChild(starling.el("dt", key));
    const item = starling.el("dd");
    item.appendChild(annotationView(inner));
    list.appendChild(item);
  }
  return list;
}

async function showAlert(alert) {
  for (const tr of document.querySelectorAll("#alerts tbody tr")) {
    tr.classList.toggle("chosen", tr.dataset.alertId === String(alert.alert_id));
  }
  const label = `alert ${alert.alert_id}, MJD ${alert.mjd.toFixed(5)}`;
  document.getElementById("cutout-alert").textContent = label;
  document.getElementById("annotations-alert").textContent = label;
  const stamps = `/api/alerts/${encodeURIComponent(alert.survey)}/${alert.alert_id}/cutouts`;
  for (const role of ["science", "template", "difference"]) {
    document.getElementById(`cutout-${role}`).src = `${stamps}/${role}.png`;
    document.getElementById(`fits-${role}`).href = `${stamps}/${role}.fits`;
  }
  const detail = await starling.json(`/api/alerts/${encodeURIComponent(alert.survey)}/${alert.alert_id}`);
  const body = document.querySelector("#annotations tbody");
  body.replaceChildren();
  for (const [annotator, payload] of Object.entries(detail.annotations)) {
    const tr = starling.row([annotator, annotationView(payload)]);
    tr.dataset.annotator = annotator;
    body.appendChild(tr);
  }
  if (!body.children.length) body.appendChild(starling.row(["(none)", ""]));
}

async function alerts() {
  const page = await starling.json(`${base}/alerts?limit=200`);
  const body = document.querySelector("#alerts tbody");
  for (const alert of page.alerts) {
    const explain = starling.el("button", "explain", { type: "button", "data-action": "explain" });
    explain.addEventListener("click", (event) => {
      event.stopPropagation();  // the panel's alert, not the cutouts'
      explainPanel.choose(alert);
    });
    const tr = starling.row([alert.alert_id, alert.mjd, alert.band, starling.shown(alert.mag, 3),
      starling.shown(alert.flux, 1), starling.shown(alert.reliability, 3), explain]);
    tr.dataset.alertId = String(alert.alert_id);
    tr.addEventListener("click", () => showAlert(alert).catch((e) => starling.problem(e.message)));
    body.appendChild(tr);
  }
  explainPanel.setAlerts(page.alerts);
  if (page.alerts.length) await showAlert(page.alerts[0]);
}

async function matches() {
  const found = await starling.json(`${base}/matches`);
  const list = document.getElementById("matches");
  for (const hit of found.filters) {
    list.appendChild(starling.el("li", `${hit.filter}: ${hit.alerts.length} alert(s)`, { "data-filter": hit.filter }));
  }
  if (!found.filters.length) list.appendChild(starling.el("li", "none that you may see"));
}

document.addEventListener("DOMContentLoaded", async () => {
  try {
    const object = await starling.json(base);
    facts(object);
    links(object);
    const curve = await starling.json(`${base}/lightcurve`);
    window.starlingLightCurve = lightCurve(curve);
    await Promise.all([alerts(), matches(), explainPanel.load()]);
    document.body.dataset.loaded = "yes";
  } catch (error) {
    starling.problem(error.message);
    document.body.dataset.loaded = "failed";
  }
});
