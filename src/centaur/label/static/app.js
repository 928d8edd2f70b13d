// The centaur labeling workbench. Plain JavaScript, no build step; it talks only to /api.
// Images are points on one canvas (thumbnails once zoomed in), so 50,000 images stay smooth.
"use strict";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                 "#bcbd22", "#7f7f7f", "#393b79", "#ad494a", "#637939", "#843c39", "#7b4173"];
const UNLABELED = "#9aa0a6";
const THUMBS_BELOW = 600;     // draw thumbnails when fewer images than this are on screen

const state = {
  ids: new Int32Array(0), paths: [], status: [], labels: new Int16Array(0), labelNames: [],
  coords: new Float32Array(0), from: null, tweenStart: 0,
  layers: ["early", "middle", "last"], methods: ["pca"], layer: "last", method: "pca",
  selection: new Set(), candidates: null,     // rows; candidates: rows proposed by "find similar"
  predicted: null, confidence: null, classes: [], fade: false, fadeThreshold: 1,
  view: { scale: 1, x: 0, y: 0 }, tool: "lasso", drag: null, hover: -1, spaceDown: false,
  version: null, progressState: null, generation: 0, thumbs: new Map(), frameMs: 0, frames: 0,
  layoutAt: 0, layoutMs: 0,   // when the last layout arrived and how long it took (paces live refreshes)
};
const row = new Map();   // image id -> row
const $ = (id) => document.getElementById(id);
const canvas = $("canvas"), ctx = canvas.getContext("2d");

// ---- API -------------------------------------------------------------------------------------
function authorName() {
  return sessionStorage.getItem("centaur-author") ?? localStorage.getItem("centaur-author") ?? "";
}

async function api(path, options = {}) {
  // who is labeling: recorded with every label, and undo takes back this person's own last action
  // (percent-encoded: a header carries only Latin-1, a name may be any script)
  const author = encodeURIComponent(authorName());
  const init = { ...options, headers: { "Content-Type": "application/json", ...(author ? { "X-Centaur-Author": author } : {}),
                                        ...(options.headers || {}) } };
  if (init.body && typeof init.body !== "string") init.body = JSON.stringify(init.body);
  const response = await fetch("/api" + path, init);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (e) { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.arrayBuffer();
}

function say(text, ok = false) {
  const m = $("message");
  m.textContent = text || "";
  m.className = ok ? "ok" : "";
}

async function guarded(work) {
  try { say(""); return await work(); } catch (e) { say(e.message); }
}

// ---- loading ---------------------------------------------------------------------------------
async function loadImages() {
  const data = await api("/images");
  state.ids = Int32Array.from(data.ids);
  state.paths = data.paths; state.status = data.status;
  state.labels = Int16Array.from(data.labels);
  state.labelNames = data.label_names;
  state.version = data.version;
  state.generation++;
  row.clear();
  data.ids.forEach((id, i) => row.set(id, i));
  renderLabels();
}

async function loadLayouts() {
  const data = await api("/layouts");
  state.layers = data.layers; state.methods = data.methods;
  if (!state.methods.includes(state.method)) state.method = state.methods[0];
  $("layer").textContent = state.layer; $("method").textContent = state.method;
}

let layoutRequest = 0;
async function loadLayout(animate = true) {
  const mine = ++layoutRequest, busy = $("busy"), started = performance.now();
  busy.textContent = `laying out (${state.layer}, ${state.method})…`;
  let buffer;
  try {
    buffer = await api(`/layout?layer=${state.layer}&method=${state.method}`);
  } finally {
    if (mine === layoutRequest) busy.textContent = "";
    state.layoutAt = performance.now();
    state.layoutMs = state.layoutAt - started;
  }
  if (mine !== layoutRequest) return;   // a newer view was asked for meanwhile: it wins
  const coords = new Float32Array(buffer);
  if (coords.length !== 2 * state.ids.length) await loadImages();   // images were added meanwhile
  state.from = animate && state.coords.length === coords.length ? state.coords : null;
  state.coords = coords;
  state.tweenStart = performance.now();
  $("empty").hidden = coords.some((v) => !Number.isNaN(v));
  draw();
}

async function loadPredictions() {
  const data = await api("/predictions");
  state.classes = data.classes;
  state.predicted = data.predicted.length ? Int16Array.from(data.predicted) : null;
  state.confidence = data.confidence.length ? Float32Array.from(data.confidence) : null;
  state.queue = data.queue;
  state.fadeThreshold = data.fade_threshold;   // the server's (learn.FADE_THRESHOLD), not a copy here
  state.generation++;
  const select = $("predicted-class"), chosen = select.value;
  select.textContent = "";
  for (const name of state.classes) {
    const option = document.createElement("option"); option.value = option.textContent = name; select.appendChild(option);
  }
  if (state.classes.includes(chosen)) select.value = chosen;
  draw();
}

async function refreshSummary() {
  const s = await api("/project");
  $("root").textContent = `${s.root} · ${s.images} images · ${Object.values(s.labels).reduce((a, b) => a + b, 0)} labeled`;
  const p = s.progress;
  const bad = (s.status.unreadable || 0) + (s.status.too_large || 0);
  $("progress").textContent = p.state === "embedding" ? `embedding ${p.done}/${p.total}`
    : (p.state === "failed" ? `embedding failed: ${p.message}` : (p.message || ""));
  $("unreadable").hidden = !bad;
  $("unreadable").textContent = `${bad} unreadable`;
  if (p.state !== "embedding" && !state.coords.some((v) => !Number.isNaN(v))) {
    $("empty").textContent = bad ? `None of the images could be read (${bad}): "${bad} unreadable" above lists them.`
      : "No image is embedded yet: add images to the folder, then rescan.";
  }
  if (s.model) showModel(s.model);
  const changed = s.version !== state.version;
  const embedding = p.state === "embedding";
  if (changed) { await loadImages(); await loadLayouts(); }
  // While embedding, the map grows live, but a layout of a large folder takes the server a
  // while (a projection of every image so far) and shares its cores with the embedding: wait
  // ten times what the last one took, so refreshing costs the embedding at most a tenth.
  const due = performance.now() - state.layoutAt > 10 * state.layoutMs;
  if (embedding && due || state.progressState === "embedding" && p.state !== "embedding" || changed && state.method === "lda") {
    await loadLayout(false);
  }
  state.progressState = p.state;
  if (state.finetuneState === "running") showFinetune(await api("/finetune"));
}

// ---- drawing ---------------------------------------------------------------------------------
function resize() {
  const ratio = window.devicePixelRatio || 1, rect = canvas.getBoundingClientRect();
  canvas.width = Math.max(1, Math.round(rect.width * ratio));
  canvas.height = Math.max(1, Math.round(rect.height * ratio));
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  draw();
}

function frame() {   // world [0, 1] square -> CSS pixels, with a margin, before zoom and pan
  const w = canvas.clientWidth, h = canvas.clientHeight, side = Math.min(w, h) - 40;
  return { side, left: (w - side) / 2, top: (h - side) / 2 };
}

function color(i) {
  if (state.labels[i] >= 0) return PALETTE[state.labels[i] % PALETTE.length];
  if (state.predicted && state.predicted[i] >= 0) {
    const name = state.classes[state.predicted[i]], k = state.labelNames.indexOf(name);
    if (k >= 0) return PALETTE[k % PALETTE.length] + "99";
  }
  return UNLABELED;
}

function faded(i) {
  return state.fade && state.confidence && state.labels[i] < 0 && state.confidence[i] >= state.fadeThreshold;
}

let pending = false;
function draw() {
  if (!pending) { pending = true; requestAnimationFrame(render); }
}

function render(now) {
  pending = false;
  const t0 = performance.now();
  const w = canvas.clientWidth, h = canvas.clientHeight, f = frame(), v = state.view;
  const t = state.from ? Math.min(1, (now - state.tweenStart) / 400) : 1;
  const n = state.ids.length, c = state.coords, from = t < 1 ? state.from : null;
  if (!state.screen || state.screen.length !== 2 * n) state.screen = new Float32Array(2 * n);
  const screen = state.screen;
  // world -> screen is x * scale + offset: inlined, no arrays per point (50,000 points per frame)
  const a = f.side * v.scale, bx = f.left * v.scale + v.x, by = f.top * v.scale + v.y;
  let visible = 0;
  for (let i = 0; i < n; i++) {
    let x = c[2 * i], y = c[2 * i + 1];
    if (from && !Number.isNaN(from[2 * i])) { x = from[2 * i] + (x - from[2 * i]) * t; y = from[2 * i + 1] + (y - from[2 * i + 1]) * t; }
    const sx = x * a + bx, sy = y * a + by;   // NaN (not embedded yet) stays NaN and is never visible
    screen[2 * i] = sx; screen[2 * i + 1] = sy;
    if (sx > -60 && sx < w + 60 && sy > -60 && sy < h + 60) visible++;
  }
  const thumbs = visible < THUMBS_BELOW;
  // thumbnails as large as the crowding allows; points when many images are on screen
  const size = thumbs ? Math.max(16, Math.min(72, (0.6 * a) / Math.sqrt(n || 1))) : 8;
  ctx.clearRect(0, 0, w, h);
  if (thumbs) drawThumbnails(screen, w, h, size);
  else drawPoints(screen);
  ctx.globalAlpha = 1;
  // selection and candidates outlined on top
  ctx.lineWidth = 2;
  const outline = (rows, style) => {
    ctx.strokeStyle = style;
    for (const i of rows) {
      const sx = screen[2 * i], sy = screen[2 * i + 1];
      if (Number.isNaN(sx)) continue;
      const s = thumbs ? size + 4 : 8;
      ctx.strokeRect(sx - s / 2, sy - s / 2, s, s);
    }
  };
  outline(state.selection, "#000");
  if (state.candidates) outline(state.candidates, "#e60");
  if (state.drag && state.drag.points && state.drag.points.length > 1) {
    ctx.strokeStyle = "#000"; ctx.setLineDash([4, 3]); ctx.beginPath();
    state.drag.points.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (state.tool === "lasso") ctx.closePath();
    ctx.stroke(); ctx.setLineDash([]);
  }
  state.frameMs = performance.now() - t0; state.frames++;
  if (t < 1) draw();
  else state.from = null;
}

function drawThumbnails(screen, w, h, size) {
  state.thumbSize = size;   // picking answers anywhere on a drawn thumbnail
  for (let i = 0; i < state.ids.length; i++) {
    const sx = screen[2 * i], sy = screen[2 * i + 1];
    if (!(sx > -60 && sx < w + 60 && sy > -60 && sy < h + 60)) continue;
    ctx.globalAlpha = faded(i) ? 0.12 : 1;
    const img = thumbnail(i);
    ctx.fillStyle = color(i);
    if (img.complete && img.naturalWidth) ctx.drawImage(img, sx - size / 2, sy - size / 2, size, size);
    else ctx.fillRect(sx - 3, sy - 3, 6, 6);
    if (state.labels[i] >= 0) ctx.fillRect(sx - size / 2, sy + size / 2 - 4, size, 4);
  }
}

// Zoomed out, every image is a small square written straight into a pixel buffer: one
// putImageData per frame instead of 50,000 fillRect calls. Colours are worked out once per
// change of labels, predictions or fading (recolor), labeled images drawn last, on top.
function recolor() {
  const n = state.ids.length, colors = new Uint32Array(n), rank = new Uint8Array(n);
  const rgba = (hex, alpha) => {   // over the white page: blend once here, not per frame
    const r = parseInt(hex.slice(1, 3), 16), g = parseInt(hex.slice(3, 5), 16), b = parseInt(hex.slice(5, 7), 16);
    const mix = (x) => Math.round(x * alpha + 255 * (1 - alpha));
    return (255 << 24 | mix(b) << 16 | mix(g) << 8 | mix(r)) >>> 0;   // little-endian RGBA
  };
  for (let i = 0; i < n; i++) {
    const hex = color(i), alpha = (hex.length > 7 ? 0.6 : 1) * (faded(i) ? 0.12 : 1);
    colors[i] = rgba(hex.slice(0, 7), alpha);
    rank[i] = state.labels[i] >= 0 ? 2 : (hex.length > 7 ? 1 : 0);
  }
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((p, q) => rank[p] - rank[q]);
  state.colors = colors; state.order = order; state.colorsFor = colorKey();
}

function colorKey() {   // what the colours depend on; `generation` counts loads of labels and predictions
  return `${state.generation}|${state.fade}|${state.ids.length}`;
}

function drawPoints(screen) {
  if (state.colorsFor !== colorKey()) recolor();
  const W = canvas.width, H = canvas.height, ratio = W / Math.max(1, canvas.clientWidth);
  if (!state.image || state.image.width !== W || state.image.height !== H) {
    state.image = ctx.createImageData(W, H);
    state.pixels = new Uint32Array(state.image.data.buffer);
  }
  const px = state.pixels, colors = state.colors, order = state.order;
  px.fill(0xffffffff);
  const half = Math.max(1, Math.round(2 * ratio)), side = 2 * half;
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    const x0 = Math.round(screen[2 * i] * ratio) - half, y0 = Math.round(screen[2 * i + 1] * ratio) - half;
    if (!(x0 >= 0 && y0 >= 0 && x0 + side <= W && y0 + side <= H)) continue;   // NaN fails too
    const col = colors[i];
    for (let dy = 0; dy < side; dy++) px.fill(col, (y0 + dy) * W + x0, (y0 + dy) * W + x0 + side);
  }
  ctx.putImageData(state.image, 0, 0);
}

function thumbnail(i) {
  const id = state.ids[i];
  let img = state.thumbs.get(id);
  if (!img) {
    img = new Image();
    img.onload = draw;
    img.src = `/api/thumb/${id}`;
    state.thumbs.set(id, img);
  }
  return img;
}

// ---- picking and selecting -------------------------------------------------------------------
function nearest(sx, sy, radius = Math.max(8, (state.thumbSize || 0) / 2)) {
  const s = state.screen; if (!s) return -1;
  let best = -1, bestD = radius * radius;
  for (let i = 0; i < state.ids.length; i++) {
    const dx = s[2 * i] - sx, dy = s[2 * i + 1] - sy, d = dx * dx + dy * dy;
    if (d < bestD) { bestD = d; best = i; }
  }
  return best;
}

function inside(polygon, x, y) {   // ray casting
  let hit = false;
  for (let a = 0, b = polygon.length - 1; a < polygon.length; b = a++) {
    const [xa, ya] = polygon[a], [xb, yb] = polygon[b];
    if ((ya > y) !== (yb > y) && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) hit = !hit;
  }
  return hit;
}

function selectWithin(points, add) {
  const s = state.screen;
  if (!add) state.selection.clear();
  state.candidates = null;
  let test;
  if (state.tool === "box") {
    const [x0, y0] = points[0], [x1, y1] = points[points.length - 1];
    const [l, r, t, b] = [Math.min(x0, x1), Math.max(x0, x1), Math.min(y0, y1), Math.max(y0, y1)];
    test = (x, y) => x >= l && x <= r && y >= t && y <= b;
  } else {
    test = (x, y) => inside(points, x, y);
  }
  for (let i = 0; i < state.ids.length; i++) {
    if (!Number.isNaN(s[2 * i]) && test(s[2 * i], s[2 * i + 1])) state.selection.add(i);
  }
  state.selectedBy = state.tool;
  showSelection();
}

function showSelection() {
  const rows = state.candidates || [...state.selection];
  const grid = $("grid");
  grid.textContent = "";
  const shown = rows.slice(0, 400);
  for (const i of shown) {
    const img = document.createElement("img");
    img.src = `/api/thumb/${state.ids[i]}`;
    img.title = `${state.paths[i]}${state.labels[i] >= 0 ? " · " + state.labelNames[state.labels[i]] : ""} (click: leave out)`;
    img.dataset.row = i;
    img.onclick = (e) => {
      if (e.detail > 1) return;   // the second click of a double click: the image under it is another one
      if (state.candidates) state.candidates = state.candidates.filter((r) => r !== i);
      else state.selection.delete(i);
      img.remove(); updateSelectionInfo(); draw();
    };
    grid.appendChild(img);
  }
  updateSelectionInfo();
  draw();
}

function updateSelectionInfo() {
  const n = state.candidates ? state.candidates.length : state.selection.size;
  const more = n > 400 ? ` (the first 400 shown)` : "";
  $("selection-info").textContent = state.candidates
    ? `${n} similar images proposed${more}: click the odd ones out, then label them.`
    : n ? `${n} selected${more}: click the odd ones out, then label them.` : "Draw around images to select them.";
}

function chosenRows() {
  return state.candidates ? state.candidates : [...state.selection];
}

function clearSelection() {
  state.selection.clear(); state.candidates = null; showSelection();
}

// ---- actions ---------------------------------------------------------------------------------
let labeling = false;   // a label request in flight: repeated clicks or keys wait for its answer
async function applyLabel(label) {
  if (labeling) return;
  const rows = chosenRows();
  if (!rows.length) { say("Select images first: draw around them on the map."); return; }
  const how = state.candidates ? "similar" : (state.selectedBy || "manual");
  labeling = true;
  let result;
  try {
    result = await api("/labels", { method: "POST", body: { ids: rows.map((i) => state.ids[i]), label, how } });
  } finally { labeling = false; }
  await loadImages();
  say(label === null ? `removed the labels of ${result.action.count} images` :
    `labeled ${result.action.count} images "${label}" (saved)`, true);
  clearSelection();
  await loadLayouts();
  if (state.method === "lda") await loadLayout(false);
}

async function undo(redo = false) {
  const result = await api(redo ? "/redo" : "/undo", { method: "POST" });
  await loadImages(); await loadLayouts();
  if (state.method === "lda") await loadLayout(false); else draw();
  say(result.action ? `${redo ? "redid" : "undid"}: ${result.action.count} images "${result.action.label ?? "unlabeled"}"`
    : `nothing to ${redo ? "redo" : "undo"}`, true);
}

async function findSimilar() {
  const rows = chosenRows();
  if (!rows.length) { say("Select some images first; similar ones are found across all images."); return; }
  const result = await api("/similar", { method: "POST",
    body: { ids: rows.map((i) => state.ids[i]), k: Math.max(20, Math.min(200, 2 * rows.length)), layer: state.layer } });
  state.selection = new Set(rows);
  state.candidates = result.ids.map((id) => row.get(id)).filter((i) => i !== undefined);
  showSelection();
}

function showModel(m) {
  const pct = (v) => (100 * v).toFixed(1) + "%";
  $("model-info").textContent = `cross-validated accuracy ${pct(m.accuracy)} (95% CI ${pct(m.interval[0])}–` +
    `${pct(m.interval[1])}) on ${m.num_labeled} labels, ${m.classes.length} classes, ${m.seconds.toFixed(1)} s`;
}

async function train() {
  $("train").disabled = true;
  try {
    const m = await api("/train", { method: "POST" });
    showModel(m);
    await loadPredictions();
  } finally { $("train").disabled = false; }
}

async function reviewQueue() {
  if (!state.queue || !state.queue.length) { say("Train first: the queue lists the images the model is least sure of."); return; }
  state.candidates = null;
  const open = state.queue.map((id) => row.get(id)).filter((i) => i !== undefined && state.labels[i] < 0);
  if (!open.length) { say("Every image the model doubted is labeled now: train again for a new queue."); return; }
  state.selection = new Set(open.slice(0, 50));
  state.selectedBy = "queue";
  showSelection();
}

async function finetune() {
  showFinetune(await api("/finetune", { method: "POST", body: {} }));
}

function showFinetune(f) {
  state.finetuneState = f.state;
  $("finetune").disabled = f.state === "running";
  $("finetune-info").textContent = f.state === "idle" ? "" :
    `fine-tune ${f.state}${f.seconds !== undefined ? " (" + f.seconds + " s)" : ""}` +
    (f.model ? `\nmodel: ${f.model}` : "") + (f.log ? "\n" + f.log.split("\n").slice(-4).join("\n") : "");
}

// The model's predictions become labels only through a person: select the unlabeled images
// predicted as one class, most confident first (as many as the grid shows), check, label.
function selectPredicted() {
  const k = state.classes.indexOf($("predicted-class").value);
  if (!state.predicted || k < 0) { say("Train first: then the images it predicts as each class can be selected."); return; }
  const rows = [];
  for (let i = 0; i < state.ids.length; i++) if (state.labels[i] < 0 && state.predicted[i] === k) rows.push(i);
  rows.sort((p, q) => state.confidence[q] - state.confidence[p]);
  state.candidates = null;
  state.selection = new Set(rows.slice(0, 200));
  state.selectedBy = "prediction";
  $("label-input").value = state.classes[k];
  showSelection();
}

async function exportAll() {
  if ($("export").disabled) return;
  $("export").disabled = true;
  let written;
  try { written = await api("/export", { method: "POST", body: {} }); } finally { $("export").disabled = false; }
  $("export-info").textContent = Object.entries(written).map(([k, v]) => `${k}: ${v}`).join("\n");
  say("exported", true);
}

function switchView(kind, step) {
  const list = kind === "layer" ? state.layers : state.methods;
  const current = list.indexOf(state[kind]);
  state[kind] = list[(current + step + list.length) % list.length];
  $(kind).textContent = state[kind];
  return guarded(() => loadLayout(true));
}

function renderLabels() {
  const ol = $("labels"), names = $("label-names");
  ol.textContent = ""; names.textContent = "";
  const counts = new Array(state.labelNames.length).fill(0);
  for (const k of state.labels) if (k >= 0) counts[k]++;
  state.labelNames.forEach((name, k) => {
    const li = document.createElement("li");
    li.title = `label the selection "${name}"` + (k < 9 ? ` (key ${k + 1})` : "");
    li.innerHTML = `<span class="key"></span><span class="swatch"></span><span class="name"></span><span class="count"></span>`;
    li.querySelector(".key").textContent = k < 9 ? String(k + 1) : "";
    li.querySelector(".swatch").style.background = PALETTE[k % PALETTE.length];
    li.querySelector(".name").textContent = name;
    li.querySelector(".count").textContent = counts[k];
    li.onclick = () => guarded(() => applyLabel(name));
    ol.appendChild(li);
    const option = document.createElement("option"); option.value = name; names.appendChild(option);
  });
}

// ---- mouse and keyboard ----------------------------------------------------------------------
function pointer(e) {
  const rect = canvas.getBoundingClientRect();
  return [e.clientX - rect.left, e.clientY - rect.top];
}

canvas.addEventListener("pointerdown", (e) => {
  const p = pointer(e);
  canvas.setPointerCapture(e.pointerId);
  const pan = state.tool === "pan" || state.spaceDown || e.button === 1;
  state.drag = { start: p, pan, moved: false, view: { ...state.view }, points: pan ? null : [p], add: e.shiftKey };
});

canvas.addEventListener("pointermove", (e) => {
  const p = pointer(e), d = state.drag;
  if (d) {
    if (Math.hypot(p[0] - d.start[0], p[1] - d.start[1]) > 3) d.moved = true;
    if (d.pan) { state.view.x = d.view.x + p[0] - d.start[0]; state.view.y = d.view.y + p[1] - d.start[1]; }
    else if (state.tool === "box") d.points = [d.start, p];
    else d.points.push(p);
    draw();
    return;
  }
  const i = nearest(p[0], p[1]);
  const hover = $("hover");
  if (i !== state.hover) {
    state.hover = i;
    if (i < 0) { hover.hidden = true; return; }
    hover.querySelector("img").src = `/api/thumb/${state.ids[i]}`;
    let text = state.paths[i];
    if (state.labels[i] >= 0) text += ` · label: ${state.labelNames[state.labels[i]]}`;
    if (state.predicted && state.predicted[i] >= 0) {
      text += ` · predicted: ${state.classes[state.predicted[i]]} (${(100 * state.confidence[i]).toFixed(0)}%)`;
    }
    hover.querySelector("div").textContent = text;
    hover.hidden = false;
  }
  hover.style.left = Math.min(p[0] + 14, canvas.clientWidth - 250) + "px";
  hover.style.top = Math.min(p[1] + 14, canvas.clientHeight - 160) + "px";
});

canvas.addEventListener("pointerup", (e) => {
  const d = state.drag; state.drag = null;
  if (!d) return;
  if (!d.moved) {                       // a click: open the image large
    const i = nearest(...pointer(e));
    if (i >= 0) openViewer(i);
  } else if (!d.pan && d.points.length > 2 - (state.tool === "box")) {
    selectWithin(d.points, d.add);
  }
  draw();
});

canvas.addEventListener("pointerleave", () => { $("hover").hidden = true; state.hover = -1; });

canvas.addEventListener("wheel", (e) => {
  e.preventDefault();
  const [sx, sy] = pointer(e), v = state.view;
  const factor = Math.exp(-e.deltaY * 0.0015), scale = Math.min(200, Math.max(0.5, v.scale * factor));
  v.x = sx - ((sx - v.x) * scale) / v.scale; v.y = sy - ((sy - v.y) * scale) / v.scale; v.scale = scale;
  draw();
}, { passive: false });

function openViewer(i) {
  const viewer = $("viewer");
  viewer.querySelector("img").src = `/api/image/${state.ids[i]}`;
  viewer.querySelector("p").textContent = state.paths[i] + (state.labels[i] >= 0 ? ` · ${state.labelNames[state.labels[i]]}` : "");
  viewer.hidden = false;
}
$("viewer").onclick = () => { $("viewer").hidden = true; };

function setTool(tool) {
  state.tool = tool;
  for (const t of ["lasso", "box", "pan"]) $("tool-" + t).classList.toggle("on", t === tool);
}

document.addEventListener("keydown", (e) => {
  const typing = (e.target.tagName === "INPUT" && e.target.type !== "checkbox") || e.target.tagName === "SELECT"
    || e.target.tagName === "TEXTAREA";
  if (typing) { if (e.key === "Escape") e.target.blur(); return; }
  const mod = e.ctrlKey || e.metaKey;
  if (mod && e.key.toLowerCase() === "z") { e.preventDefault(); guarded(() => undo(e.shiftKey)); return; }
  if (mod && e.key.toLowerCase() === "y") { e.preventDefault(); guarded(() => undo(true)); return; }
  if (mod || e.altKey) return;
  const keys = {
    ArrowLeft: () => switchView("layer", -1), ArrowRight: () => switchView("layer", 1),
    ArrowUp: () => switchView("method", -1), ArrowDown: () => switchView("method", 1),
    Escape: () => { if (!$("viewer").hidden) $("viewer").hidden = true; else clearSelection(); },
    l: () => setTool("lasso"), b: () => setTool("box"), p: () => setTool("pan"),
    s: () => guarded(findSimilar), t: () => guarded(train), n: () => $("label-input").focus(),
    f: () => { $("fade").checked = !$("fade").checked; state.fade = $("fade").checked; draw(); },
    " ": () => { state.spaceDown = true; },
  };
  if (/^[1-9]$/.test(e.key)) {
    const name = state.labelNames[Number(e.key) - 1];
    if (name) guarded(() => applyLabel(name));
    e.preventDefault(); return;
  }
  if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
});
document.addEventListener("keyup", (e) => { if (e.key === " ") state.spaceDown = false; });

$("label-form").onsubmit = (e) => {
  e.preventDefault();
  const label = $("label-input").value.trim();
  if (!label) { say("Type a label name first."); return; }
  guarded(async () => { await applyLabel(label); $("label-input").value = ""; $("label-input").blur(); });
};
$("unlabel").onclick = () => guarded(() => applyLabel(null));
$("similar").onclick = () => guarded(findSimilar);
$("clear").onclick = clearSelection;
$("train").onclick = () => guarded(train);
$("queue").onclick = () => guarded(reviewQueue);
$("unreadable").onclick = () => {   // the files that could not be read, with why, so they can be fixed
  const bad = state.paths.map((p, i) => [p, state.status[i]]).filter(([, st]) => st !== "ok");
  say(`${bad.length} file(s) could not be used:\n` + bad.slice(0, 50).map(([p, st]) => `${p} (${st.replace("_", " ")})`).join("\n")
      + (bad.length > 50 ? `\n... and ${bad.length - 50} more` : ""));
};
$("export").onclick = () => guarded(exportAll);
$("finetune").onclick = () => guarded(finetune);
$("accept").onclick = selectPredicted;
$("rescan").onclick = () => guarded(async () => { await api("/rescan", { method: "POST" }); await refreshSummary(); });
$("undo").onclick = () => guarded(() => undo(false));
$("redo").onclick = () => guarded(() => undo(true));
$("fade").onchange = () => { state.fade = $("fade").checked; draw(); };
$("layer-prev").onclick = () => switchView("layer", -1);
$("layer-next").onclick = () => switchView("layer", 1);
$("method-prev").onclick = () => switchView("method", -1);
$("method-next").onclick = () => switchView("method", 1);
for (const t of ["lasso", "box", "pan"]) $("tool-" + t).onclick = () => setTool(t);
window.addEventListener("resize", resize);
const authorInput = $("author");
authorInput.value = authorName();
authorInput.addEventListener("change", () => {
  const name = authorInput.value.trim();
  sessionStorage.setItem("centaur-author", name);   // this tab's name; two tabs may be two people
  localStorage.setItem("centaur-author", name);     // the first name of the next tab opened
});

// What the browser tests and the frame-time benchmark read: positions on screen, the last frame.
window.centaur = {
  state, faded,
  screenPosition: (id) => { const i = row.get(id); return i === undefined || !state.screen ? null : [state.screen[2 * i], state.screen[2 * i + 1]]; },
  redraw: () => new Promise((resolve) => { draw(); requestAnimationFrame(() => resolve(state.frameMs)); }),
  ready: false,
};

(async () => {
  await guarded(async () => {
    await loadImages(); await loadLayouts(); resize(); await loadLayout(false); await loadPredictions();
    await refreshSummary(); showFinetune(await api("/finetune"));
  });
  window.centaur.ready = true;
  setInterval(() => refreshSummary().catch(() => {}), 1500);
})();
