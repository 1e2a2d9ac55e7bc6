// The pipeline page: the stages in order with their replicas, workers, throughput, consumer lag and
// components; the autoscaler's policies and latest decisions with their reasons; dead letters by
// reason. Read from the controller through /api/pipeline with the tab's token, every 2 s, so what a
// token may see is the controller's decision. An operator changes replicas and components from here;
// the page shows those controls to operators only, and the controller refuses anyone else's change.
"use strict";

const REFRESH_MS = 2000;
const byId = (id) => document.getElementById(id);
const page = { session: { signed_in: false }, previous: new Map(), stages: [] };

function time(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleTimeString();
}

// Messages taken in per second since the last reading of the stage (null at the first one, or when
// the count went down because a replica restarted and began counting again).
function rateNow(stage, now) {
  const before = page.previous.get(stage.name);
  page.previous.set(stage.name, { count: stage.messages_in, at: now });
  if (!before || now <= before.at || stage.messages_in < before.count) return null;
  return (stage.messages_in - before.count) / ((now - before.at) / 1000);
}

function componentList(stage) {
  const list = starling.el("ol", null, { class: "components" });
  for (const component of stage.components) {
    const name = component.name || component.use;
    const item = starling.el("li", null, { "data-component": name });
    item.appendChild(starling.el("span", name));
    if (component.name && component.name !== component.use) item.appendChild(starling.el("span", ` (${component.use})`, { class: "muted" }));
    if (page.session.role === "operator") {
      const remove = starling.el("button", "remove", { type: "button", "data-action": "remove" });
      remove.addEventListener("click", () => removeComponent(stage.name, name).catch((e) => starling.problem(e.message)));
      item.appendChild(remove);
    }
    list.appendChild(item);
  }
  return list;
}

function showStages(pipeline, now) {
  byId("version").textContent = pipeline.version;
  byId("updated").textContent = new Date(now).toLocaleTimeString();
  const body = byId("stages").querySelector("tbody");
  body.replaceChildren();
  for (const stage of pipeline.stages) {
    const up = stage.workers.filter((w) => w.alive).length;
    const rate = rateNow(stage, now);
    const row = starling.row([
      stage.name, stage.replicas, `${up} of ${stage.workers.length}`, rate === null ? "…" : rate.toFixed(1),
      stage.messages_in, stage.lag, stage.dead_letters, componentList(stage),
    ]);
    row.dataset.stage = stage.name;
    row.dataset.replicas = String(stage.replicas);
    row.dataset.workersUp = String(up);
    body.appendChild(row);
  }
  page.stages = pipeline.stages.map((s) => s.name);
  for (const select of document.querySelectorAll(".stage-choice")) {
    if (select.options.length) continue;  // kept as the operator chose it
    for (const name of page.stages) select.appendChild(starling.el("option", name, { value: name }));
  }
}

function showAutoscaler(report) {
  const policies = byId("policies").querySelector("tbody");
  policies.replaceChildren();
  for (const [stage, policy] of Object.entries(report.policies)) {
    policies.appendChild(starling.row([
      stage, `${policy.min_replicas} to ${policy.max_replicas}`, policy.target_lag_per_replica,
      `${policy.scale_up_cooldown_s} / ${policy.scale_down_cooldown_s}`, report.lag[stage] ?? "",
    ]));
  }
  byId("no-policy").hidden = Object.keys(report.policies).length > 0;
  const decisions = byId("decisions").querySelector("tbody");
  decisions.replaceChildren();
  for (const decision of [...report.decisions].reverse()) {  // newest first
    decisions.appendChild(starling.row([
      time(decision.at), decision.stage, `${decision.replicas_from} → ${decision.replicas_to}`,
      decision.lag, decision.reason,
    ]));
  }
  byId("no-decision").hidden = report.decisions.length > 0;
}

function showDeadLetters(pipeline) {
  const body = byId("dead").querySelector("tbody");
  body.replaceChildren();
  let shown = 0;
  for (const stage of pipeline.stages) {
    const reasons = Object.entries(stage.dead_letter_reasons || {}).sort((a, b) => b[1] - a[1]);
    for (const [reason, count] of reasons) {
      body.appendChild(starling.row([stage.name, reason, count]));
      shown += 1;
    }
  }
  byId("no-dead").hidden = shown > 0;
}

async function refresh() {
  const now = Date.now();
  const found = await starling.json("/api/pipeline");
  showStages(found.pipeline, now);
  showAutoscaler(found.autoscaler);
  showDeadLetters(found.pipeline);
  for (const id of ["stages-section", "autoscaler-section", "dead-section"]) byId(id).hidden = false;
  document.body.dataset.version = String(found.pipeline.version);
}

// -- an operator's changes ------------------------------------------------------------------------

async function changed(what, answer) {
  byId("change-status").textContent = `${what}: the pipeline is now version ${answer.version}`;
  await refresh();
}

async function setReplicas() {
  const stage = byId("replicas-stage").value;
  const replicas = Number(byId("replicas-count").value);
  const answer = await starling.send("PUT", `/api/pipeline/stages/${encodeURIComponent(stage)}/replicas`, { replicas });
  await changed(`${stage} set to ${replicas} replicas`, answer);
}

async function addComponent() {
  const stage = byId("add-stage").value;
  const text = byId("add-config").value.trim();
  let config = {};
  try {
    config = text ? JSON.parse(text) : {};
  } catch (error) {
    throw new Error(`the config is not JSON: ${error.message}`);
  }
  const body = { use: byId("add-use").value.trim(), config };
  const name = byId("add-name").value.trim();
  if (name) body.name = name;
  const answer = await starling.send("POST", `/api/pipeline/stages/${encodeURIComponent(stage)}/components`, body);
  await changed(`${body.name || body.use} added to ${stage}`, answer);
}

async function removeComponent(stage, name) {
  if (!window.confirm(`Remove ${name} from the ${stage} stage?`)) return;
  const url = `/api/pipeline/stages/${encodeURIComponent(stage)}/components/${encodeURIComponent(name)}`;
  await changed(`${name} removed from ${stage}`, await starling.send("DELETE", url));
}

function onSubmit(id, action) {
  byId(id).addEventListener("submit", (event) => {
    event.preventDefault();
    const status = byId("change-status");
    status.textContent = "";
    delete status.dataset.done;
    action()
      .catch((e) => { status.textContent = e.message; })
      .finally(() => { status.dataset.done = "yes"; });
  });
}

document.addEventListener("DOMContentLoaded", async () => {
  onSubmit("replicas-form", setReplicas);
  onSubmit("add-form", addComponent);
  try {
    page.session = await starling.json("/api/whoami").catch(() => ({ signed_in: false }));
    byId("signed-out").hidden = Boolean(page.session.signed_in);
    byId("change-section").hidden = page.session.role !== "operator";
    if (page.session.signed_in) {
      await refresh();
      starling.every(refresh, REFRESH_MS);
    }
    document.body.dataset.loaded = "yes";
  } catch (error) {
    starling.problem(error.message);
    document.body.dataset.loaded = "failed";
  }
});
