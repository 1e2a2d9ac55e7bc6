// The search page: an object by id, an alert by id, a cone, or any TAP query; results as a table whose
// object ids link to their pages.
"use strict";

function results(columns, rows, note) {
  const section = document.getElementById("results-section");
  const head = document.querySelector("#results thead");
  const body = document.querySelector("#results tbody");
  head.replaceChildren(starling.row(columns));
  body.replaceChildren();
  const surveyAt = columns.indexOf("survey");
  const objectAt = columns.indexOf("object_id");
  for (const values of rows) {
    const cells = values.map((value, index) =>
      index === objectAt && surveyAt >= 0 ? starling.objectLink(values[surveyAt], value) : value);
    body.appendChild(starling.row(cells));
  }
  document.getElementById("results-count").textContent = note;
  section.hidden = false;
  document.getElementById("problem").hidden = true;
}

function values(form) {
  return Object.fromEntries(new FormData(form).entries());
}

function on(id, handler) {
  document.getElementById(id).addEventListener("submit", (event) => {
    event.preventDefault();
    handler(values(event.target)).catch((error) => starling.problem(error.message));
  });
}

on("by-object", async ({ object_id }) => {
  window.location.assign(`/objects/${encodeURIComponent(object_id.trim())}`);
});

on("by-alert", async ({ survey, alert_id }) => {
  const alert = await starling.json(`/api/alerts/${encodeURIComponent(survey)}/${encodeURIComponent(alert_id.trim())}`);
  window.location.assign(`/objects/${encodeURIComponent(alert.survey)}/${encodeURIComponent(alert.object_id)}`);
});

on("by-cone", async ({ ra, dec, radius_arcsec }) => {
  const query = new URLSearchParams({ ra, dec, radius_arcsec });
  const found = await starling.json(`/api/search/cone?${query}`);
  const columns = ["survey", "object_id", "distance_arcsec", "ra", "dec", "last_mjd", "last_band", "last_mag", "n_detections"];
  const rows = found.objects.map((o) => columns.map((c) => o[c]));
  results(columns, rows, `${rows.length} object(s)${found.more ? ", the nearest (more in the cone)" : ""}`);
});

on("by-query", async ({ query }) => {
  const answer = await fetch("/tap/sync", {
    method: "POST",
    headers: starling.headers(),
    body: new URLSearchParams({ REQUEST: "doQuery", LANG: "ADQL", QUERY: query, RESPONSEFORMAT: "json" }),
  });
  if (!answer.ok) {
    // A refused query comes back as a VOTable error document: its message has the line and column.
    const text = await answer.text();
    const found = new DOMParser().parseFromString(text, "application/xml")
      .querySelector('INFO[name="QUERY_STATUS"]');
    throw new Error(found ? found.textContent.trim() : `${answer.status} ${answer.statusText}`);
  }
  const table = starling.parse(await answer.text());
  const columns = table.metadata.map((c) => c.name);
  results(columns, table.data, `${table.data.length} row(s)${table.overflow ? " (cut at MAXREC)" : ""}`);
});
