// app.js: the latent explorer's page (index.html) over the JSON API of `latentlab serve`
// (apps/serve_api.h says what each endpoint takes and returns). Plain JavaScript, no libraries.
//
// The current code (one number per latent unit) is the page's state: the sliders show it, the big
// image is its decoding, and the map, the batch, the test images and the arithmetic set it. A
// slider that moves faster than the server decodes does not queue requests: at most one decode is
// in flight, and when it returns the latest code is sent if it changed meanwhile, so the image
// follows the slider without a backlog.
"use strict";

const state = {
  info: null,
  code: [],          // the current code, length latent_dim
  label: 0,          // a conditional GAN's class
  sliders: new Map(), // dim -> {input, value}
  ends: { a: null, b: null },  // interpolation ends: {code} or {index}, with a description
  decoding: false,
  decodeAgain: false,
  busy: 0,
};

const $ = (id) => document.getElementById(id);

// The tab10 palette (matplotlib's default), as data/plot.cpp colors the latent map's classes.
const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function setBusy(delta) {
  state.busy += delta;
  document.body.dataset.busy = String(state.busy);
}

function showError(message) {
  $("status").textContent = message;
}

// POST (or GET without a body) to the API; resolves to the JSON answer, or rejects with the
// server's one-line {"error"} message. Errors are shown on the page, not thrown into the console.
async function api(path, body) {
  setBusy(1);
  try {
    const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    const res = await fetch(path, init);
    const data = await res.json();
    if (!res.ok) throw new Error(data.error || `${path}: HTTP ${res.status}`);
    $("status").textContent = "";
    return data;
  } finally {
    setBusy(-1);
  }
}

// Runs an action of a button; a failure is shown in the status line.
function guarded(fn) {
  return async (...args) => {
    try {
      await fn(...args);
    } catch (e) {
      showError(e.message);
    }
  };
}

function labelField() {
  return state.info.conditional ? { label: state.label } : {};
}

function image(src, cls, title) {
  const img = document.createElement("img");
  img.src = src;
  img.className = cls;
  if (title) img.title = title;
  img.alt = title || "decoded image";
  return img;
}

function figure(src, cls, caption) {
  const f = document.createElement("figure");
  f.appendChild(image(src, cls, caption));
  const c = document.createElement("figcaption");
  c.textContent = caption;
  f.appendChild(c);
  return f;
}

function fmt(x, digits = 2) {
  return Number(x).toFixed(digits);
}

// ---- the current code, its sliders and its decoding -------------------------------------------

function buildSliders() {
  const box = $("sliders");
  box.textContent = "";
  for (const u of state.info.units) {
    const row = document.createElement("div");
    row.className = "slider" + (u.active === false ? " inactive" : "");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `z${u.dim}` + (u.kl !== null ? `  KL ${fmt(u.kl)}` : u.variance !== null ? `  var ${fmt(u.variance, 3)}` : "");
    const input = document.createElement("input");
    input.type = "range";
    input.min = u.lo;
    input.max = u.hi;
    input.step = (u.hi - u.lo) / 600;
    input.value = 0;
    input.dataset.dim = u.dim;
    input.setAttribute("aria-label", `latent unit ${u.dim}`);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = fmt(0);
    input.addEventListener("input", () => {
      state.code[u.dim] = Number(input.value);
      value.textContent = fmt(input.value);
      requestDecode();
    });
    row.append(name, input, value);
    box.appendChild(row);
    state.sliders.set(u.dim, { input, value });
  }
}

// Sets the code and the sliders; decodes it unless its image is given.
function setCode(code, imageSrc) {
  state.code = code.map(Number);
  for (const [dim, s] of state.sliders) {
    s.input.value = state.code[dim];
    s.value.textContent = fmt(state.code[dim]);
  }
  if (imageSrc) $("decoded").src = imageSrc;
  else requestDecode();
}

function requestDecode() {
  if (state.decoding) {
    state.decodeAgain = true;
    return;
  }
  state.decoding = true;
  (async () => {
    try {
      do {
        state.decodeAgain = false;
        const t0 = performance.now();
        const r = await api("/api/decode", { code: state.code, ...labelField() });
        $("decoded").src = r.image;
        const ms = performance.now() - t0;
        $("decode-time").textContent = `decoded in ${fmt(ms, 1)} ms (round trip)`;
        document.body.dataset.lastDecodeMs = fmt(ms, 1);
      } while (state.decodeAgain);
    } catch (e) {
      showError(e.message);
    } finally {
      state.decoding = false;
    }
  })();
}

// ---- the latent map ------------------------------------------------------------------------------

const map = { points: [], x0: 0, x1: 1, y0: 0, y1: 1, marker: null, pad: 12 };

function mapToCanvas(x, y, canvas) {
  const w = canvas.width - 2 * map.pad, h = canvas.height - 2 * map.pad;
  return [map.pad + ((x - map.x0) / (map.x1 - map.x0)) * w, map.pad + (1 - (y - map.y0) / (map.y1 - map.y0)) * h];
}

function canvasToMap(px, py, canvas) {
  const w = canvas.width - 2 * map.pad, h = canvas.height - 2 * map.pad;
  return [map.x0 + ((px - map.pad) / w) * (map.x1 - map.x0), map.y0 + (1 - (py - map.pad) / h) * (map.y1 - map.y0)];
}

function drawMap() {
  const canvas = $("map");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  // The axes through 0 (the prior's mean for a 2-D latent; the codes' mean for PCA axes).
  ctx.strokeStyle = "#ddd";
  const [ox, oy] = mapToCanvas(0, 0, canvas);
  ctx.beginPath();
  ctx.moveTo(ox, 0); ctx.lineTo(ox, canvas.height);
  ctx.moveTo(0, oy); ctx.lineTo(canvas.width, oy);
  ctx.stroke();
  ctx.globalAlpha = 0.6;
  for (const [x, y, label] of map.points) {
    const [px, py] = mapToCanvas(x, y, canvas);
    ctx.fillStyle = label >= 0 ? TAB10[label % 10] : "#555";
    ctx.fillRect(px - 1.5, py - 1.5, 3, 3);
  }
  ctx.globalAlpha = 1;
  if (map.marker) {
    const [px, py] = mapToCanvas(map.marker[0], map.marker[1], canvas);
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(px, py, 7, 0, 2 * Math.PI);
    ctx.moveTo(px - 11, py); ctx.lineTo(px + 11, py);
    ctx.moveTo(px, py - 11); ctx.lineTo(px, py + 11);
    ctx.stroke();
    ctx.lineWidth = 1;
  }
}

async function loadMap() {
  const r = await api("/api/map");
  map.points = r.points;
  // The window: the 1st..99th percentile of each axis, widened by 15%, as latent-map's manifold
  // does, so that a few outlying codes do not shrink the cloud into a corner.
  const pct = (v, q) => v[Math.min(v.length - 1, Math.max(0, Math.round(q * (v.length - 1))))];
  const xs = r.points.map((p) => p[0]).sort((a, b) => a - b), ys = r.points.map((p) => p[1]).sort((a, b) => a - b);
  const widen = (lo, hi) => { const m = 0.15 * (hi - lo || 1); return [lo - m, hi + m]; };
  [map.x0, map.x1] = widen(pct(xs, 0.01), pct(xs, 0.99));
  [map.y0, map.y1] = widen(pct(ys, 0.01), pct(ys, 0.99));
  $("map-note").textContent = r.axes === "pca"
    ? `${r.points.length} test images' mean codes on the first two principal components (PC1 ${fmt(100 * r.variance_explained[0], 0)}%, PC2 ${fmt(100 * r.variance_explained[1], 0)}% of the variance). A click decodes mean + x·pc1 + y·pc2.`
    : `${r.points.length} test images' mean codes (z1 right, z2 up). A click decodes that point.`;
  const legend = $("map-legend");
  legend.textContent = "";
  r.classes.forEach((name, k) => {
    const s = document.createElement("span");
    s.textContent = name;
    s.style.setProperty("--c", TAB10[k % 10]);
    legend.appendChild(s);
  });
  drawMap();
}

async function mapClick(ev) {
  const canvas = $("map");
  const rect = canvas.getBoundingClientRect();
  const px = ((ev.clientX - rect.left) / rect.width) * canvas.width;
  const py = ((ev.clientY - rect.top) / rect.height) * canvas.height;
  const [x, y] = canvasToMap(px, py, canvas);
  map.marker = [x, y];
  drawMap();
  const r = await api("/api/map/point", { x, y });
  setCode(r.code, r.image);
  $("decode-time").textContent = `map point (${fmt(x)}, ${fmt(y)})`;
}

// ---- batches, test images, interpolation, arithmetic, traversal, outliers ------------------------

async function runBatch() {
  const seed = Number($("batch-seed").value), n = Number($("batch-n").value);
  const body = { seed, n };
  if (state.info.conditional && $("batch-label").value !== "") body.label = Number($("batch-label").value);
  const r = await api("/api/batch", body);
  const grid = $("batch-grid");
  grid.textContent = "";
  r.images.forEach((src, i) => {
    const f = figure(src, "thumb", String(i));
    f.firstChild.addEventListener("click", () => {
      if (r.labels) selectLabel(r.labels[i]);
      setCode(r.codes[i], src);
      $("decode-time").textContent = `row ${i} of the batch of seed ${seed}`;
    });
    grid.appendChild(f);
  });
}

async function randomCode() {
  const seed = Number($("code-seed").value);
  const r = await api("/api/batch", { seed, n: 1, ...labelField() });
  setCode(r.codes[0], r.images[0]);
  $("code-seed").value = seed + 1;  // the next click draws another code
}

async function encodeTest(index) {
  const r = await api("/api/encode", { index });
  setCode(r.code, r.decoded);
  $("decode-time").textContent = `the mean code of test image #${r.index}`;
  $("encode-result").hidden = false;
  $("encode-original").src = r.image;
  $("encode-decoded").src = r.decoded;
  let caption = `test image #${r.index}` + (r.class ? ` (${r.class})` : "");
  try {
    const s = await api("/api/scores", { indices: [index] });
    const sc = s.scores[0];
    caption += `: recon ${fmt(sc.recon, 1)}` + (sc.kl !== undefined ? `, KL ${fmt(sc.kl, 1)}, -ELBO ${fmt(sc.neg_elbo, 1)}` : "") + " nats";
  } catch (e) {
    showError(e.message);
  }
  $("encode-caption").textContent = caption;
  return r;
}

function selectLabel(k) {
  state.label = k;
  $("label-select").value = String(k);
}

function setEnd(which, end, desc) {
  state.ends[which] = end;
  document.querySelector(`.end[data-end="${which}"] .end-desc`).textContent = desc;
}

async function runInterpolation() {
  if (!state.ends.a || !state.ends.b) throw new Error("set both ends A and B first (current code or a test image)");
  const mode = document.querySelector('input[name="interp-mode"]:checked').value;
  const steps = Number($("interp-steps").value);
  const r = await api("/api/interpolate", { from: state.ends.a, to: state.ends.b, steps, mode, ...labelField() });
  const strip = $("interp-strip");
  strip.textContent = "";
  r.images.forEach((src, i) => strip.appendChild(figure(src, "cell", `t=${fmt(i / (steps - 1))}`)));
  $("interp-note").textContent = `${mode}: |z| along the path ${r.norms.map((v) => fmt(v, 1)).join(", ")}; angle between the ends ${fmt(r.angle_deg, 1)}°`;
}

function parseScales() {
  const text = $("arith-scales").value.trim();
  const scales = text.split(",").map((s) => Number(s.trim()));
  if (!text || scales.some((s) => !Number.isFinite(s))) throw new Error("scales: a comma-separated list of numbers, e.g. 0,0.5,1");
  return scales;
}

async function runArithmetic() {
  const scales = parseScales();
  let body;
  if (state.info.kind === "gan") {
    body = { plus: $("arith-plus-rows").value.trim(), minus: $("arith-minus-rows").value.trim(),
             seed: Number($("batch-seed").value), batch: Number($("batch-n").value), base: { code: state.code }, scales, ...labelField() };
  } else {
    body = { plus: `label:${$("arith-plus").value}`, minus: `label:${$("arith-minus").value}`, base: { code: state.code }, scales };
  }
  const r = await api("/api/arithmetic", body);
  const means = $("arith-means");
  means.textContent = "";
  means.append(figure(r.plus.mean_image, "mid", `mean of plus (${r.plus.images})`), figure(r.minus.mean_image, "mid", `mean of minus (${r.minus.images})`));
  const strip = $("arith-strip");
  strip.textContent = "";
  r.images.forEach((src, i) => strip.appendChild(figure(src, "cell", `z${r.scales[i] < 0 ? "−" : "+"}${Math.abs(r.scales[i])}v`)));
  $("arith-note").textContent = `v = mean code of plus − mean code of minus, |v| = ${fmt(r.vector_norm)}; each image decodes current code + s·v.`;
}

async function runTraversal() {
  const dim = Number($("trav-dim").value);
  const r = await api("/api/traverse", {
    dim, base: { code: state.code }, range: [Number($("trav-lo").value), Number($("trav-hi").value)], steps: Number($("trav-steps").value), ...labelField(),
  });
  const strip = $("trav-strip");
  strip.textContent = "";
  r.images.forEach((src, i) => strip.appendChild(figure(src, "cell", `z${dim}=${fmt(r.values[i], 1)}`)));
}

async function runScores() {
  const r = await api("/api/scores", { worst: 8, of: Number($("score-of").value), seed: Number($("score-seed").value) });
  $("score-name").textContent = r.score;
  const list = $("score-list");
  list.textContent = "";
  for (const s of r.scores) {
    const f = figure(s.image, "thumb", `#${s.index} ${fmt(s[r.score], 0)}`);
    f.title = `${s.class}: ${r.score} ${fmt(s[r.score], 1)} nats`;
    f.firstChild.addEventListener("click", guarded(() => encodeTest(s.index)));
    list.appendChild(f);
  }
}

// ---- setup ----------------------------------------------------------------------------------------

function fillSelect(select, names) {
  select.textContent = "";
  names.forEach((name, k) => {
    const o = document.createElement("option");
    o.value = String(k);
    o.textContent = name;
    select.appendChild(o);
  });
}

async function init() {
  const info = await api("/api/info");
  state.info = info;
  const kind = { vae: "VAE", ae: "autoencoder", gan: "GAN" }[info.kind];
  $("run-info").textContent = `${kind}: ${info.model}` + (info.data ? ` · data ${info.data}` : "") + ` · latent dim ${info.latent_dim}` +
    (info.total_kl !== undefined ? ` · KL ${fmt(info.total_kl)} nats, ${info.active_units} active units` : "");
  $("slider-note").textContent = info.ranked_by === "kl"
    ? "One slider per latent unit, by KL (the nats each carries over the test set), largest first; grey: inactive (Var(E[z|x]) ≤ 0.01)."
    : info.ranked_by === "variance" ? "One slider per latent unit, by the variance of its codes over the test set (an autoencoder has no KL)."
      : "One slider per noise unit of the generator.";
  buildSliders();
  state.code = new Array(info.latent_dim).fill(0);

  const unitNames = info.units.map((u) => `z${u.dim}` + (u.kl !== null ? ` (KL ${fmt(u.kl)})` : ""));
  fillSelect($("trav-dim"), unitNames);
  [...$("trav-dim").options].forEach((o, i) => { o.value = String(info.units[i].dim); });
  // Each unit's own range (an AE's codes have no unit scale), set when the unit is chosen.
  const setTravRange = () => {
    const u = info.units.find((x) => String(x.dim) === $("trav-dim").value);
    $("trav-lo").value = u.lo;
    $("trav-hi").value = u.hi;
  };
  $("trav-dim").addEventListener("change", setTravRange);
  setTravRange();

  if (info.conditional) {
    $("label-box").hidden = false;
    fillSelect($("label-select"), info.classes);
    $("label-select").addEventListener("change", () => { state.label = Number($("label-select").value); requestDecode(); });
    // The batch's classes: one for all, or cycling through them.
    const lab = document.createElement("label");
    lab.textContent = "class ";
    const sel = document.createElement("select");
    sel.id = "batch-label";
    fillSelect(sel, info.classes);
    const cycle = document.createElement("option");
    cycle.value = "";
    cycle.textContent = "all, cycling";
    sel.insertBefore(cycle, sel.firstChild);
    sel.value = "";
    lab.appendChild(sel);
    $("batch-run").before(lab);
  }

  if (info.encoder) {
    $("encode-box").hidden = false;
    $("score-panel").hidden = false;
    document.querySelectorAll(".end-test").forEach((e) => { e.hidden = false; });
    $("batch-title").textContent = "Prior samples";
    $("batch-note").textContent = "Codes drawn from N(0, I) with a seed (as latentlab sample --seed); click one to load its code.";
    $("arith-classes").hidden = false;
    fillSelect($("arith-plus"), info.classes);
    fillSelect($("arith-minus"), info.classes);
    if (info.classes.length > 1) $("arith-minus").value = "1";
    $("arith-help").textContent = "v = mean code of the plus class − mean code of the minus class (test images' mean codes), added to the current code.";
  } else {
    $("batch-note").textContent = "The noise rows of latentlab sample --seed S --n N; click one to load its code. Arithmetic takes rows of this batch.";
    $("arith-rows").hidden = false;
    $("arith-help").textContent = "v = mean noise of the plus rows − mean noise of the minus rows of the batch above (its seed and n), added to the current code.";
  }
  if (info.map) {
    $("map-panel").hidden = false;
    $("map").addEventListener("click", guarded(mapClick));
    await loadMap();
  }

  $("code-zero").addEventListener("click", () => setCode(new Array(info.latent_dim).fill(0)));
  $("code-random").addEventListener("click", guarded(randomCode));
  $("encode-run").addEventListener("click", guarded(() => encodeTest(Number($("encode-index").value))));
  $("batch-run").addEventListener("click", guarded(runBatch));
  $("interp-run").addEventListener("click", guarded(runInterpolation));
  $("arith-run").addEventListener("click", guarded(runArithmetic));
  $("trav-run").addEventListener("click", guarded(runTraversal));
  $("score-run").addEventListener("click", guarded(runScores));
  document.querySelectorAll(".end").forEach((el) => {
    const which = el.dataset.end;
    el.querySelector(".end-current").addEventListener("click", () => {
      setEnd(which, { code: state.code.slice() }, `current code (|z| = ${fmt(Math.hypot(...state.code))})`);
    });
    el.querySelector(".end-use-test").addEventListener("click", () => {
      const index = Number(el.querySelector(".end-index").value);
      setEnd(which, { index }, `test image #${index}`);
    });
  });

  // A first picture: the zero code (the prior's mean), and a batch to pick codes from.
  requestDecode();
  await runBatch();
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", guarded(init));
