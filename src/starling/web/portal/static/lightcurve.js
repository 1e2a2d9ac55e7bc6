// The light curve of the object page, drawn by uPlot: a series per band and kind (detections as dots
// with error bars, upper limits as open circles, forced photometry as small dots with error bars),
// in magnitude (brighter up) or in flux (nJy). Every point has an x slot of its own, so that points at the
// same time are all drawn; the points drawn per band and kind are counted in `counts` for people and tests.
"use strict";

const KINDS = {
  detection: { label: "", size: 8, fill: true },
  upper_limit: { label: " limit", size: 9, fill: false },
  forced: { label: " forced", size: 4, fill: true },
};

function lightCurveSeries(curve, unit) {
  const usable = curve.points.filter((p) => (unit === "mag" ? p.mag : p.flux) !== null);
  usable.sort((a, b) => a.mjd - b.mjd);
  const keys = [];
  for (const p of usable) {
    const key = `${p.band}|${p.kind}`;
    if (!keys.includes(key)) keys.push(key);
  }
  keys.sort();
  const xs = usable.map((p) => p.mjd);
  const ys = keys.map(() => new Array(usable.length).fill(null));
  const errors = keys.map(() => new Array(usable.length).fill(null));
  usable.forEach((p, index) => {
    const which = keys.indexOf(`${p.band}|${p.kind}`);
    ys[which][index] = unit === "mag" ? p.mag : p.flux;
    errors[which][index] = p.kind === "upper_limit" ? null : (unit === "mag" ? p.mag_err : p.flux_err);
  });
  return { keys, data: [xs, ...ys], errors };
}

function errorBars(errors) {
  return (u) => {
    const ctx = u.ctx;
    ctx.save();
    ctx.lineWidth = devicePixelRatio;
    u.series.forEach((series, s) => {
      if (s === 0 || !series.show) return;
      const ys = u.data[s];
      const errs = errors[s - 1];
      ctx.strokeStyle = series._stroke || "#444";
      ctx.beginPath();
      for (let i = 0; i < ys.length; i++) {
        if (ys[i] === null || errs[i] === null) continue;
        const x = u.valToPos(u.data[0][i], "x", true);
        ctx.moveTo(x, u.valToPos(ys[i] - errs[i], "y", true));
        ctx.lineTo(x, u.valToPos(ys[i] + errs[i], "y", true));
      }
      ctx.stroke();
    });
    ctx.restore();
  };
}

function drawLightCurve(curve, unit) {
  const holder = document.getElementById("lightcurve");
  holder.replaceChildren();
  const { keys, data, errors } = lightCurveSeries(curve, unit);
  const series = [{ label: "MJD", value: (u, v) => (v === null ? "" : v.toFixed(5)) }];
  for (const key of keys) {
    const [band, kind] = key.split("|");
    const colour = BAND_COLOURS[band] || "#333";
    series.push({
      label: `${band}${KINDS[kind].label}`,
      stroke: colour,
      fill: KINDS[kind].fill ? colour : "transparent",
      paths: () => null,
      points: { show: true, size: KINDS[kind].size, stroke: colour, fill: KINDS[kind].fill ? colour : "#fff" },
      value: (u, v) => (v === null ? "" : v.toFixed(unit === "mag" ? 3 : 1)),
    });
  }
  const plot = new uPlot({
    width: Math.min(1100, holder.clientWidth || 1000),
    height: 380,
    series,
    scales: { x: { time: false }, y: { dir: unit === "mag" ? -1 : 1 } },
    axes: [{ label: "MJD" }, { label: unit === "mag" ? "AB magnitude" : "difference flux (nJy)" }],
    hooks: { draw: [errorBars(errors)] },
    cursor: { drag: { x: true, y: true } },
  }, data, holder);
  const counts = {};
  keys.forEach((key, index) => { counts[key] = data[index + 1].filter((v) => v !== null).length; });
  holder.dataset.unit = unit;
  holder.dataset.counts = JSON.stringify(counts);
  return { plot, counts };
}

function lightCurve(curve) {
  const table = document.querySelector("#band-counts tbody");
  for (const band of curve.bands) {
    const tr = starling.row([band.band, band.detection, band.upper_limit, band.forced]);
    tr.dataset.band = String(band.band);
    table.appendChild(tr);
  }
  let shown = drawLightCurve(curve, "mag");
  for (const unit of ["mag", "flux"]) {
    document.getElementById(`show-${unit}`).addEventListener("click", () => {
      shown.plot.destroy();
      shown = drawLightCurve(curve, unit);
      document.getElementById("show-mag").classList.toggle("chosen", unit === "mag");
      document.getElementById("show-flux").classList.toggle("chosen", unit === "flux");
    });
  }
  return shown;
}
