// netatlas playground: a thin client. The server computes every geometry layer with the library;
// this file only draws them, sends settings, and acknowledges each frame once drawn (the server
// sends the next frame only after that, from the newest weights: frames are dropped, never queued).
"use strict";

const $ = (id) => document.getElementById(id);
const CLASS_COLOURS = ["#f59322", "#0877bd", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];
// the server's constants, written into the page by the server (netatlas.app._server.page_constants)
const SERVER = JSON.parse($("netatlas-constants").textContent);
const CONFIG_KEYS = SERVER.config_keys, VIEW_KEYS = SERVER.view_keys, MAX_UPLOAD_BYTES = SERVER.max_upload_bytes;
// region fills of the pattern colouring: the server sends a palette index per region (the same
// activation pattern keeps its colour), and the page fills all regions of one colour as one path
const PATTERN_PALETTE = Array.from({ length: SERVER.pattern_colours }, (_, i) =>
  `hsl(${Math.round((i * 360 * 0.618034) % 360)},${42 + (i % 3) * 9}%,${74 + (i % 4) * 4}%)`);

const state = {
  ws: null, session: null, connected: false, data: null, frame: null, lastFrame: null,
  frameTimes: [], trails: [], uploaded: false, scrubbing: false, retry: 0,
  // what benchmarks/app.py reads: frames drawn while playing, time to draw each, bytes received
  stats: { frames: 0, drawMs: [], bytes: [] },
};
window.playground = state;  // for tests and the curious

// ---------------------------------------------------------------- settings <-> form <-> URL
function readConfig() {
  const cfg = { mode: $("mode-regress").checked ? "regress" : "classify" };
  for (const el of document.querySelectorAll("[data-key]")) cfg[el.dataset.key] = el.value.trim();
  cfg.features = [...document.querySelectorAll("[data-feature]")].filter((el) => el.checked)
    .map((el) => el.dataset.feature).join(",");
  return cfg;
}
function readView() {
  const view = {};
  for (const el of document.querySelectorAll("[data-view]")) {
    view[el.dataset.view] = el.type === "checkbox" ? el.checked : el.value;
  }
  view.window = state.viewWindow ? state.viewWindow.map((v) => +v.toPrecision(8)).join(",") : "";
  return view;
}
function writeForm(cfg, view) {
  if (cfg.mode) { $("mode-" + (cfg.mode === "regress" ? "regress" : "classify")).checked = true; }
  for (const el of document.querySelectorAll("[data-key]")) {
    const v = cfg[el.dataset.key];
    if (v !== undefined && v !== null) el.value = Array.isArray(v) ? v.join(",") : v;
  }
  if (cfg.features !== undefined && cfg.features !== null) setFeatures(cfg.features);
  if (view.window) {
    const w = String(view.window).split(",").map(Number);
    state.viewWindow = w.length === 4 && w.every(Number.isFinite) ? w : null;
  }
  for (const el of document.querySelectorAll("[data-view]")) {
    const v = view[el.dataset.view];
    if (v === undefined) continue;
    if (el.type === "checkbox") el.checked = v === true || v === "1" || v === "true";
    else el.value = v;
  }
  updateModeClasses();
}
function setFeatures(features) {
  const chosen = new Set(Array.isArray(features) ? features : String(features).split(","));
  for (const el of document.querySelectorAll("[data-feature]")) el.checked = chosen.has(el.dataset.feature);
}
function fromQuery() {
  const q = new URLSearchParams(location.search), cfg = {}, view = {};
  for (const k of CONFIG_KEYS) if (q.has(k)) cfg[k] = q.get(k);
  for (const k of VIEW_KEYS) if (q.has("v_" + k)) view[k] = q.get("v_" + k);
  return { cfg, view };
}
function toQuery() {
  const q = new URLSearchParams(), cfg = readConfig(), view = readView();
  for (const k of CONFIG_KEYS) if (cfg[k] !== undefined && !(k === "dataset" && cfg[k] === "upload")) q.set(k, cfg[k]);
  for (const k of VIEW_KEYS) q.set("v_" + k, view[k] === true ? "1" : view[k] === false ? "0" : view[k]);
  return q.toString();
}
function updateModeClasses() {
  const regress = $("mode-regress").checked;
  document.body.classList.toggle("mode-regress", regress);
  document.body.classList.toggle("mode-classify", !regress);
  document.body.classList.toggle("blobs", $("dataset").value === "blobs");
}

// ---------------------------------------------------------------- errors and notes
function clearErrors(except) {
  for (const el of document.querySelectorAll(".err")) if (el.id !== except) el.textContent = "";
  $("error").hidden = true;
}
function showError(field, message) {
  const el = $("err-" + field);
  if (el) { el.textContent = message; return; }
  $("error").textContent = message;
  $("error").hidden = false;
}

// ---------------------------------------------------------------- connection
function send(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
}
function sendConfig() {
  updateModeClasses();
  const cfg = readConfig();
  if (cfg.dataset === "upload" && !state.uploaded) cfg.dataset = "moons";
  history.replaceState(null, "", "?" + toQuery());
  state.sentConfig = JSON.stringify(readConfig());
  send({ type: "config", config: cfg, view: readView() });
}
function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws`);
  ws.binaryType = "arraybuffer";  // frames are binary: a JSON header and typed arrays
  state.ws = ws;
  setStatus("connecting…", "");
  ws.onopen = () => { state.connected = true; state.retry = 0; setStatus("connected", "ok"); };
  ws.onmessage = (ev) => {
    let msg;
    if (typeof ev.data !== "string") state.stats.lastBytes = ev.data.byteLength;
    try { msg = typeof ev.data === "string" ? JSON.parse(ev.data) : decodeFrame(ev.data); } catch (e) {
      console.warn("unreadable message", e);
      return;
    }
    handle(msg);
  };
  ws.onclose = (ev) => {
    // a close frame with a reason (a message too big, JSON nested too deeply): say it until the
    // next data set arrives on the new connection
    if (ev.reason) { state.closeReason = ev.reason; showError("connection", `The server closed the connection: ${ev.reason}`); }
    state.connected = false;
    state.session = null;
    setPlaying(false);
    const wait = Math.min(5000, 500 * 2 ** state.retry++);
    setStatus(`disconnected; retrying in ${(wait / 1000).toFixed(1)} s`, "bad");
    setTimeout(connect, wait);
  };
}
function setStatus(text, cls) { const s = $("status"); s.textContent = text; s.className = "status " + cls; }

function handle(msg) {
  switch (msg.type) {
    case "hello":
      state.session = msg.session;
      if (state.uploaded) { $("dataset").value = "moons"; state.uploaded = false; }
      sendConfig();
      break;
    case "data":
      if (state.data && (state.data.config.dataset !== msg.config.dataset || state.data.mode !== msg.mode)) {
        state.viewWindow = null;  // other data: back to its own window
      }
      clearErrors(state.keepUploadError ? "err-upload" : null);
      state.keepUploadError = false;
      if (state.closeReason) {
        showError("connection", `The server closed the connection: ${state.closeReason}`);
        state.closeReason = null;
      }
      state.data = msg;
      state.trails = [];
      state.lastFrame = null;
      state.regionHistory = [];
      $("notice").hidden = true;
      $("description").textContent = msg.description;
      if (msg.config.dataset === "upload") { $("dataset").value = "upload"; }
      // the server's settings are the truth: depth and widths as built, in the form and the URL
      // (unless the form changed since this config was sent: a newer one is on its way)
      if (!state.sentConfig || state.sentConfig === JSON.stringify(readConfig())) {
        $("depth").value = msg.config.depth;
        $("widths").value = msg.config.widths.join(",");
        setFeatures(msg.config.features);
      }
      syncMetricLayer(msg.config.depth);
      drawNetwork(null);
      drawLegend();
      history.replaceState(null, "", "?" + toQuery() + location.hash);
      if (state.pendingWeights) {  // a link with weights: load them into the net it describes
        send({ type: "weights", data: state.pendingWeights });
        state.pendingWeights = null;
        history.replaceState(null, "", "?" + toQuery());
        $("share-note").textContent = "Loaded the weights from the link.";
      }
      draw();
      break;
    case "weights": {
      const url = `${location.origin}${location.pathname}?${toQuery()}#w=${msg.data}`;
      history.replaceState(null, "", url);
      navigator.clipboard.writeText(url).then(
        () => { $("share-note").textContent = `Link with ${msg.n.toLocaleString()} weights copied`; },
        () => { $("share-note").textContent = "Link with weights is in the address bar"; });
      break;
    }
    case "notice":
      $("share-note").textContent = msg.message;
      $("notice").textContent = msg.message;
      $("notice").hidden = false;
      break;
    case "uploaded":
      state.uploaded = true;
      $("dataset").querySelector("option[value=upload]").disabled = false;
      $("dataset").value = "upload";
      $("err-upload").textContent = "";
      $("share-note").textContent = `Uploaded ${msg.name}: ${msg.n} points, ${msg.n_classes} classes.`;
      break;
    case "frame":
      onFrame(msg);
      break;
    case "error":
      if (msg.field === "upload") { $("upload").value = ""; }
      showError(msg.field, msg.message);
      break;
  }
}

// a binary frame: "NAF1", uint32 header length, JSON header, padding to 8, then the arrays; each
// array reference {$b: offset, dtype, n} in the header becomes a typed-array view (no copy)
const TYPED = { f32: Float32Array, i32: Int32Array, u16: Uint16Array, u8: Uint8Array };
function decodeFrame(buffer) {
  const dv = new DataView(buffer);
  if (dv.getUint32(0, false) !== 0x4e414631) throw new Error("not a netatlas frame");
  const length = dv.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, length)));
  const start = Math.ceil((8 + length) / 8) * 8;
  const resolve = (v) => {
    if (Array.isArray(v)) return v.map(resolve);
    if (v && typeof v === "object") {
      if (v.$b !== undefined && v.dtype) return new TYPED[v.dtype](buffer, start + v.$b, v.n);
      for (const k of Object.keys(v)) v[k] = resolve(v[k]);
    }
    return v;
  };
  return resolve(header);
}
function onFrame(msg) {
  recordTrail(msg);
  recordRegions(msg);
  state.lastFrame = msg;
  const now = performance.now();
  state.frameTimes.push(now);
  while (state.frameTimes.length && now - state.frameTimes[0] > 2000) state.frameTimes.shift();
  try {
    const start = performance.now();
    updateReadout(msg);
    draw();
    if (msg.meta.playing) {
      const st = state.stats;
      st.frames++;
      st.drawMs.push(performance.now() - start);
      st.bytes.push(st.lastBytes || 0);
      if (st.drawMs.length > 5000) { st.drawMs.splice(0, 2500); st.bytes.splice(0, 2500); }
    }
  } finally {
    send({ type: "ack", frame: msg.frame });
  }
}

// ---------------------------------------------------------------- readouts
function fmt(v, digits = 4) {
  if (v === null || v === undefined) return "–";
  if (Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-3 && v !== 0)) return v.toExponential(2);
  return Number(v).toPrecision(digits);
}
function fmtCount(v) {
  return Number.isInteger(v) && Math.abs(v) < 1e7 ? v.toLocaleString() : fmt(v, 3);
}
function setPlaying(playing) {
  const b = $("play");
  b.classList.toggle("playing", playing);
  b.innerHTML = playing ? "&#10074;&#10074; Pause" : "&#9654; Play";
  state.playing = playing;
}
function updateReadout(msg) {
  const meta = msg.meta, layers = msg.layers;
  $("epoch").textContent = meta.epoch;
  setPlaying(meta.playing);
  const scrub = $("scrub");
  if (!state.scrubbing) {
    scrub.max = Math.max(0, meta.n_snapshots - 1);
    scrub.value = meta.snapshot;
  }
  $("scrub-label").textContent = meta.scrubbed ? `snapshot at epoch ${meta.epoch}` : "live";
  for (const k of ["loss", "test_loss", "accuracy", "test_accuracy"]) $("m-" + k).textContent = fmt(meta.metrics[k]);
  const te = $("train-error");
  te.hidden = !meta.error;
  te.textContent = meta.error || "";
  const regions = layers.regions || {};
  $("region-count").textContent = regions.n_regions !== undefined ? regions.n_regions.toLocaleString() : "–";
  const bounds = layers.bounds || {};
  const upper = [["serra2018_upper", "Serra 2018"], ["montufar2017_upper", "Montúfar 2017"]]
    .filter(([k]) => bounds[k] !== undefined).map(([k, who]) => `≤ ${fmtCount(bounds[k])} (${who})`);
  const lower = [["serra2018_lower", "Serra 2018"], ["montufar2014_lower", "Montúfar 2014"]]
    .filter(([k]) => bounds[k] !== undefined).map(([k, who]) => `${fmtCount(bounds[k])} (${who})`);
  $("region-bounds").textContent = upper.length ?
    `· whole plane, this architecture: ${upper.join(", ")}; the best nets reach ≥ ${lower.join(", ")}` :
    bounds.unavailable ? `(bounds: ${bounds.unavailable})` : "";
  const notes = $("notes");
  notes.innerHTML = "";
  const seen = new Set();
  for (const [name, layer] of Object.entries(layers)) {
    const note = layer && (layer.unavailable || layer.error || layer.note);
    if (!note || seen.has(note)) continue;
    seen.add(note);
    const li = document.createElement("li");
    li.textContent = `${name}: ${note}`;
    notes.appendChild(li);
  }
  $("fps").textContent = state.frameTimes.length > 1 ?
    ((state.frameTimes.length - 1) / ((state.frameTimes.at(-1) - state.frameTimes[0]) / 1000)).toFixed(1) : "–";
  $("frame-ms").textContent = msg.timing_ms;
  drawCurves(meta.curves, state.data && state.data.mode);
  drawRegionCurve();
  drawLegend();
  drawNetwork(msg);
}

// ---------------------------------------------------------------- drawing: 2-D
function hexToRgb(hex) { const n = parseInt(hex.slice(1), 16); return [(n >> 16) & 255, (n >> 8) & 255, n & 255]; }
function viridis(t) {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  t = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t)), f = t - i;
  return stops[i].map((a, j) => Math.round(a + f * (stops[i + 1][j] - a)));
}
// The canvas keeps its CSS size (state.size) and a backing store of devicePixelRatio times as many
// pixels, so lines and text stay sharp on high-DPI screens; drawing code works in CSS pixels.
function fitCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1, css = Math.round(canvas.getBoundingClientRect().width) || 600;
  if (canvas.width !== Math.round(css * dpr) || canvas.height !== Math.round(css * dpr)) {
    canvas.width = Math.round(css * dpr);
    canvas.height = Math.round(css * dpr);
  }
  return { W: css, H: css, dpr };
}
function draw() {
  const canvas = $("view"), ctx = canvas.getContext("2d"), size = fitCanvas(canvas);
  ctx.setTransform(size.dpr, 0, 0, size.dpr, 0, 0);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, size.W, size.H);
  if (!state.data) return;
  if (state.data.mode === "regress") drawRegression(ctx, size);
  else drawClassification(ctx, size);
}
function transform2d(size, w) {
  const [x0, x1, y0, y1] = w, W = size.W, H = size.H;
  const sx = W / (x1 - x0), sy = H / (y1 - y0);
  return { sx, sy, W, H, w, X: (x) => (x - x0) * sx, Y: (y) => H - (y - y0) * sy };
}
// the window drawn: zoomed/panned to, or the data's own
function currentWindow() { return state.viewWindow || state.data.window; }
function drawGrid(ctx, size, n, colourOf, smooth = true, rect = null) {
  const img = new ImageData(n, n);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const [R, G, B, A] = colourOf((n - 1 - r) * n + c), o = 4 * (r * n + c);
      img.data[o] = R; img.data[o + 1] = G; img.data[o + 2] = B; img.data[o + 3] = A;
    }
  }
  const off = document.createElement("canvas");
  off.width = n; off.height = n;
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = smooth;
  if (rect) ctx.drawImage(off, rect[0], rect[1], rect[2], rect[3]);
  else ctx.drawImage(off, 0, 0, size.W, size.H);
  ctx.imageSmoothingEnabled = true;
}
function segmentPath(T, flat) {
  const path = new Path2D();
  for (let i = 0; i + 3 < flat.length; i += 4) {
    if (!Number.isFinite(flat[i]) || !Number.isFinite(flat[i + 2])) continue;
    path.moveTo(T.X(flat[i]), T.Y(flat[i + 1]));
    path.lineTo(T.X(flat[i + 2]), T.Y(flat[i + 3]));
  }
  return path;
}
// polygons given as flat vertex buffers: one Path2D per colour index (a few fills per frame, however
// many regions), and one path of all outlines
function polygonPaths(T, coords, offsets, colourIndex, nColours) {
  const fills = Array.from({ length: nColours }, () => new Path2D()), outline = new Path2D();
  for (let i = 0; i + 1 < offsets.length; i++) {
    const a = offsets[i], b = offsets[i + 1];
    if (b - a < 3) continue;
    const path = fills[colourIndex[i] % nColours];
    const x = T.X(coords[2 * a]), y = T.Y(coords[2 * a + 1]);
    path.moveTo(x, y); outline.moveTo(x, y);
    for (let j = a + 1; j < b; j++) {
      const u = T.X(coords[2 * j]), v = T.Y(coords[2 * j + 1]);
      path.lineTo(u, v); outline.lineTo(u, v);
    }
    // back to the first vertex by a lineTo: closePath costs time proportional to the path so far
    // in chromium (quadratic over thousands of regions: 1.9 s instead of 5 ms at 12k regions)
    path.lineTo(x, y); outline.lineTo(x, y);
  }
  return { fills, outline };
}
function drawClassification(ctx, size) {
  const data = state.data, frame = state.lastFrame, T = transform2d(size, currentWindow());
  const L = frame ? frame.layers : {};
  const view = readView();
  // grids were sampled on the frame's window: drawn there (until the next frame covers a new view)
  const fw = (frame && frame.window) || data.window;
  const rect = [T.X(fw[0]), T.Y(fw[3]), T.X(fw[1]) - T.X(fw[0]), T.Y(fw[2]) - T.Y(fw[3])];
  if (L.heatmap && L.heatmap.classes) {
    const h = L.heatmap, rgbs = CLASS_COLOURS.map(hexToRgb);
    drawGrid(ctx, size, h.n, (i) => {
      const rgb = rgbs[h.classes[i] % 10];
      const k = Math.max(0, Math.min(1, (h.confidence[i] - 1 / data.n_classes) / (1 - 1 / data.n_classes)));
      return [...rgb.map((v) => Math.round(255 + (v - 255) * 0.45 * k)), 255];
    }, true, rect);
  } else if (L.volume && L.volume.log_volume) {
    const v = L.volume, [lo, hi] = v.range, span = hi - lo || 1;
    drawGrid(ctx, size, v.n, (i) => (!Number.isFinite(v.log_volume[i]) ? [0, 0, 0, 255] :
      [...viridis((v.log_volume[i] - lo) / span), 255]), false, rect);  // samples, not interpolated
  }
  const RV = L.region_volume;
  if (view.heatmap === "volume" && RV && RV.log_volume && L.regions && L.regions.coords) {
    // exact per-region magnification: each region filled with its constant value (32 colour bins)
    const [lo, hi] = RV.range, span = hi - lo || 1, bins = new Uint8Array(RV.log_volume.length);
    RV.log_volume.forEach((v, i) => { bins[i] = Number.isFinite(v) ? Math.min(31, Math.floor(32 * (v - lo) / span)) : 32; });
    const paths = polygonPaths(T, L.regions.coords, L.regions.offsets, bins, 33);
    paths.fills.forEach((path, k) => {
      ctx.fillStyle = k === 32 ? "#000" : `rgb(${viridis((k + 0.5) / 32).join(",")})`;
      ctx.fill(path);
    });
  }
  if (L.regions && L.regions.coords && view.regions) {
    const R = L.regions, byClass = view.colour_by === "class" && R.pieces;
    if (byClass) {  // regions split along the exact boundary: each piece has one class
      const P = R.pieces, paths = polygonPaths(T, P.coords, P.offsets, P.classes, CLASS_COLOURS.length);
      paths.fills.forEach((path, k) => {
        const [r, g, b] = hexToRgb(CLASS_COLOURS[k]);
        ctx.fillStyle = `rgba(${r},${g},${b},0.30)`;
        ctx.fill(path);
      });
    }
    const paths = polygonPaths(T, R.coords, R.offsets, R.colour, PATTERN_PALETTE.length);
    if (view.colour_by === "pattern") {
      ctx.globalAlpha = 0.45;
      paths.fills.forEach((path, k) => { ctx.fillStyle = PATTERN_PALETTE[k]; ctx.fill(path); });
      ctx.globalAlpha = 1;
    }
    ctx.lineWidth = 0.5;  // thin outlines: the boundary and the data stay in front
    ctx.strokeStyle = "rgba(40,40,70,0.30)";
    ctx.stroke(paths.outline);
  }
  if (L.hyperplanes && L.hyperplanes.w && view.hyperplanes) drawHyperplanes(ctx, T, L.hyperplanes, data.window);
  if (L.contours && L.contours.lines && view.contours) {
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1.2;
    ctx.strokeStyle = "rgba(20,20,20,0.7)";
    for (const line of L.contours.lines) ctx.stroke(segmentPath(T, line.segments));
    ctx.setLineDash([]);
  }
  if (L.boundary && L.boundary.segments && view.boundary) {
    ctx.lineWidth = 2.5;
    ctx.lineCap = "round";
    ctx.strokeStyle = "#111";
    ctx.stroke(segmentPath(T, L.boundary.segments));
  }
  drawPoints(ctx, T, data, L, view);
  drawTicks(ctx, T);
  const scale = view.heatmap === "volume" && RV && RV.range ? RV : L.volume;
  if (scale && scale.range) {  // colour scale of the volume element
    const [lo, hi] = scale.range, W = size.W;
    for (let i = 0; i < 120; i++) {
      ctx.fillStyle = `rgb(${viridis(i / 119).join(",")})`;
      ctx.fillRect(W - 130 + i, 10, 1, 10);
    }
    const text = `log √det g, layer ${scale.layer}${scale === RV ? " (exact per region)" : " (sampled)"}: ` +
      `${fmt(lo, 3)} … ${fmt(hi, 3)}`;
    ctx.font = "11px system-ui";
    const width = ctx.measureText(text).width;
    ctx.fillStyle = "rgba(255,255,255,0.85)";
    ctx.fillRect(W - 18 - width, 22, width + 10, 16);
    ctx.fillStyle = "#222"; ctx.textAlign = "right";
    ctx.fillText(text, W - 12, 34);
    ctx.textAlign = "left";
  }
}
// axis ticks at 1, 2 or 5 times a power of ten, labelled inside the frame
function niceStep(span) {
  const raw = span / 5, p = 10 ** Math.floor(Math.log10(raw)), f = raw / p;
  return p * (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10);
}
function drawTicks(ctx, T) {
  const [x0, x1, y0, y1] = T.w;
  ctx.fillStyle = "#555"; ctx.strokeStyle = "#555"; ctx.lineWidth = 1; ctx.font = "10px system-ui";
  const sx = niceStep(x1 - x0), sy = niceStep(y1 - y0);
  ctx.textAlign = "center";
  for (let v = Math.ceil(x0 / sx) * sx; v <= x1; v += sx) {
    const X = T.X(v);
    ctx.beginPath(); ctx.moveTo(X, T.H); ctx.lineTo(X, T.H - 5); ctx.stroke();
    ctx.fillText(+v.toFixed(6) + "", X, T.H - 7);
  }
  ctx.textAlign = "left";
  for (let v = Math.ceil(y0 / sy) * sy; v <= y1; v += sy) {
    const Y = T.Y(v);
    ctx.beginPath(); ctx.moveTo(0, Y); ctx.lineTo(5, Y); ctx.stroke();
    ctx.fillText(+v.toFixed(6) + "", 7, Y + 3);
  }
}
function drawHyperplanes(ctx, T, hp, w) {
  const [x0, x1, y0, y1] = w, n = hp.b.length, span = Math.max(x1 - x0, y1 - y0);
  const zone = hp.zone && hp.zone[1] > hp.zone[0] ? hp.zone : null;
  const planes = new Path2D(), bands = new Path2D();
  for (let i = 0; i < n; i++) {
    const a = hp.w[2 * i], c = hp.w[2 * i + 1], b = hp.b[i];
    const norm = Math.hypot(a, c);
    if (!(norm > 0)) continue;
    // the line a x + c y + b = level, drawn between two far points along it
    const line = (level) => {
      const px = -a * (b - level) / (norm * norm), py = -c * (b - level) / (norm * norm);
      const dx = -c / norm, dy = a / norm, far = 4 * span;
      return [px - far * dx, py - far * dy, px + far * dx, py + far * dy];
    };
    // a transition zone band only where it means something: narrower than a tenth of the view
    // (wide bands of smooth units would stack into a grey wash over everything)
    if (zone && (zone[1] - zone[0]) / norm < 0.1 * span) {
      const p = line(zone[0]), q = line(zone[1]);
      bands.moveTo(T.X(p[0]), T.Y(p[1])); bands.lineTo(T.X(p[2]), T.Y(p[3]));
      bands.lineTo(T.X(q[2]), T.Y(q[3])); bands.lineTo(T.X(q[0]), T.Y(q[1]));
      bands.lineTo(T.X(p[0]), T.Y(p[1]));
    }
    const l = line(0);
    planes.moveTo(T.X(l[0]), T.Y(l[1])); planes.lineTo(T.X(l[2]), T.Y(l[3]));
  }
  ctx.fillStyle = "rgba(90,90,120,0.10)";
  ctx.fill(bands, "nonzero");
  ctx.lineWidth = 1;
  ctx.setLineDash([2, 3]);
  ctx.strokeStyle = "rgba(60,60,90,0.55)";
  ctx.stroke(planes);
  ctx.setLineDash([]);
}
const MIN_POINT_RADIUS = 2.5;  // the smallest gradient norms still show as visible dots
function pointRadius(L, i, base) {
  const g = L.gradnorm;
  if (!g || !g.norms || !(g.max > 0)) return base;
  const v = g.norms[i];
  return !Number.isFinite(v) ? base : MIN_POINT_RADIUS + 4 * Math.sqrt(v / g.max);
}
function drawPoints(ctx, T, data, L, view) {
  // one path per class (and one for the white rims): a few fills however many points
  const kept = L.subsample && L.subsample.kept && view.subsample ? new Set(L.subsample.kept) : null;
  const nC = CLASS_COLOURS.length;
  if (view.show_test !== false) {
    const rings = Array.from({ length: nC }, () => new Path2D());
    for (const [x, y, label] of data.test) {
      const X = T.X(x), Y = T.Y(y);
      rings[label % nC].moveTo(X + 2.8, Y);
      rings[label % nC].arc(X, Y, 2.8, 0, 2 * Math.PI);
    }
    ctx.lineWidth = 1.2;
    rings.forEach((path, k) => { ctx.strokeStyle = CLASS_COLOURS[k]; ctx.stroke(path); });
  }
  const useGrad = view.gradnorm;
  const dots = Array.from({ length: nC }, () => new Path2D()), faded = Array.from({ length: nC }, () => new Path2D());
  const rims = new Path2D(), keptRims = new Path2D();
  data.train.forEach(([x, y, label], i) => {
    const isKept = kept && kept.has(i);
    const r = Math.max(useGrad ? pointRadius(L, i, 3.5) : 3.5, isKept ? 3 : 0, MIN_POINT_RADIUS);
    const X = T.X(x), Y = T.Y(y), target = kept && !isKept ? faded[label % nC] : dots[label % nC];
    target.moveTo(X + r, Y); target.arc(X, Y, r, 0, 2 * Math.PI);
    const rim = isKept ? keptRims : rims;
    rim.moveTo(X + r, Y); rim.arc(X, Y, r, 0, 2 * Math.PI);
  });
  ctx.globalAlpha = 0.25;
  faded.forEach((path, k) => { ctx.fillStyle = CLASS_COLOURS[k]; ctx.fill(path); });
  ctx.globalAlpha = 1;
  ctx.lineWidth = 0.8; ctx.strokeStyle = "#fff"; ctx.stroke(rims);
  dots.forEach((path, k) => { ctx.fillStyle = CLASS_COLOURS[k]; ctx.fill(path); });
  ctx.lineWidth = 1.6; ctx.strokeStyle = "#000"; ctx.stroke(keptRims);
}

// ---------------------------------------------------------------- drawing: 1-D spline view
function drawRegression(ctx, size) {
  const data = state.data, frame = state.lastFrame, L = frame ? frame.layers : {};
  const [x0, x1] = data.window;
  let ys = data.train.map((r) => r[1]).concat(data.test.map((r) => r[1]));
  if (L.curve && L.curve.y) ys = ys.concat(Array.from(L.curve.y).filter((v) => Number.isFinite(v) && Math.abs(v) < 1e3));
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  const pad = 0.15 * Math.max(y1 - y0, 0.5);
  y0 -= pad; y1 += pad;
  y0 -= 0.12 * (y1 - y0);  // room for the breakpoint-motion strip at the bottom
  const T = transform2d(size, [x0, x1, y0, y1]);
  // axes
  ctx.strokeStyle = "#ccd"; ctx.lineWidth = 1;
  ctx.beginPath();
  if (y0 < 0 && y1 > 0) { ctx.moveTo(0, T.Y(0)); ctx.lineTo(size.W, T.Y(0)); }
  if (x0 < 0 && x1 > 0) { ctx.moveTo(T.X(0), 0); ctx.lineTo(T.X(0), size.H); }
  ctx.stroke();
  // the noiseless target function, for reference
  const target = data.target || data.test.slice().sort((a, b) => a[0] - b[0]);
  ctx.strokeStyle = "rgba(120,120,140,0.6)"; ctx.lineWidth = 1.5; ctx.setLineDash([4, 4]);
  ctx.beginPath();
  target.forEach(([x, y], i) => (i ? ctx.lineTo(T.X(x), T.Y(y)) : ctx.moveTo(T.X(x), T.Y(y))));
  ctx.stroke(); ctx.setLineDash([]);
  // breakpoint motion: a strip along the bottom, time running upwards (newest on top)
  const sp = L.spline, H = size.H, band = 46;
  if (sp && sp.breakpoints && state.trails.length > 1) {
    const trail = state.trails, n = trail.length;
    ctx.fillStyle = "rgba(245,245,250,0.9)";
    ctx.fillRect(0, H - band - 6, size.W, band + 6);
    ctx.lineWidth = 1.2;
    for (let i = 0; i < sp.breakpoints.length; i++) {
      ctx.strokeStyle = "rgba(214,39,40,0.55)";
      ctx.beginPath();
      let started = false;
      trail.forEach((t, k) => {
        const p = t[i];
        if (!p || !Number.isFinite(p[0]) || p[0] < x0 || p[0] > x1) { started = false; return; }
        const y = H - 4 - band * k / (n - 1);
        started ? ctx.lineTo(T.X(p[0]), y) : ctx.moveTo(T.X(p[0]), y);
        started = true;
      });
      ctx.stroke();
    }
    ctx.fillStyle = "#777"; ctx.font = "10px system-ui";
    ctx.fillText("breakpoint motion (last frames, newest on top)", 6, H - band - 9);
  }
  if (sp && sp.breakpoints) {
    state.maxMu = Math.max(1e-12, ...Array.from(sp.delta_slopes, (m) => Math.abs(m || 0)));
  }
  if (L.curve && L.curve.x) {
    ctx.strokeStyle = "#0877bd"; ctx.lineWidth = 2.5;
    ctx.beginPath();
    L.curve.x.forEach((x, i) => {
      const y = L.curve.y[i];
      if (!Number.isFinite(y)) return;
      i ? ctx.lineTo(T.X(x), T.Y(y)) : ctx.moveTo(T.X(x), T.Y(y));
    });
    ctx.stroke();
  }
  data.train.forEach(([x, y], i) => {
    ctx.beginPath();
    ctx.arc(T.X(x), T.Y(y), readView().gradnorm ? pointRadius(L, i, 4) : 4, 0, 2 * Math.PI);
    ctx.fillStyle = "#f59322"; ctx.fill();
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 1; ctx.stroke();
  });
  if (sp && sp.breakpoints) {
    let outside = 0;
    sp.breakpoints.forEach((b, i) => {
      if (!Number.isFinite(b) || b < x0 || b > x1) { outside++; return; }
      const r = 2 + 9 * Math.sqrt(Math.abs(sp.delta_slopes[i] || 0) / state.maxMu);
      ctx.beginPath();
      ctx.arc(T.X(b), T.Y(sp.values[i]), r, 0, 2 * Math.PI);
      ctx.fillStyle = "rgba(214,39,40,0.55)"; ctx.fill();
      ctx.strokeStyle = "#a01010"; ctx.lineWidth = 1; ctx.stroke();
    });
    ctx.fillStyle = "#555"; ctx.font = "12px system-ui";
    ctx.fillText(`${sp.breakpoints.length} breakpoints (${outside} outside the window); size = |Δslope|`, 8, 16);
  }
}
// region count against epoch (live frames only: a scrubbed-back frame is not a new epoch)
function recordRegions(frame) {
  const R = frame.layers.regions;
  if (!R || R.n_regions === undefined || frame.meta.scrubbed) return;
  const h = state.regionHistory || (state.regionHistory = []);
  while (h.length && h.at(-1)[0] > frame.meta.epoch) h.pop();  // a branch: drop the later history
  if (h.length && h.at(-1)[0] === frame.meta.epoch) h[h.length - 1] = [frame.meta.epoch, R.n_regions];
  else h.push([frame.meta.epoch, R.n_regions]);
  if (h.length > 2000) h.splice(0, h.length - 2000);
}
function drawRegionCurve() {
  const c = $("region-curve"), ctx = c.getContext("2d"), W = c.width, H = c.height;
  ctx.clearRect(0, 0, W, H);
  const h = state.regionHistory || [];
  if (h.length < 1) return;
  const e1 = Math.max(1, h.at(-1)[0]), top = Math.max(...h.map((p) => p[1])), bottom = Math.min(...h.map((p) => p[1]));
  const X = (e) => 30 + (W - 40) * e / e1, Y = (v) => 8 + (H - 24) * (1 - (v - bottom) / (top - bottom || 1));
  ctx.strokeStyle = "#6a3d9a"; ctx.lineWidth = 1.5; ctx.beginPath();
  h.forEach(([e, v], i) => (i ? ctx.lineTo(X(e), Y(v)) : ctx.moveTo(X(e), Y(v))));
  ctx.stroke();
  ctx.fillStyle = "#666"; ctx.font = "10px system-ui";
  ctx.fillText(`${top.toLocaleString()}`, 2, 10);
  ctx.fillText(`${bottom.toLocaleString()}`, 2, H - 14);
  ctx.fillStyle = "#6a3d9a"; ctx.fillText("— regions in window", 4, H - 3);
  ctx.fillStyle = "#666"; ctx.textAlign = "right"; ctx.fillText(`epoch ${e1}`, W - 4, H - 3); ctx.textAlign = "left";
}
// the class colour key and the line legend follow the data and the toggles
function drawLegend() {
  const key = $("class-key");
  if (!key || !state.data || state.data.mode === "regress") { if (key) key.innerHTML = ""; return; }
  const labels = state.data.labels || Array.from({ length: state.data.n_classes }, (_, k) => `class ${k}`);
  key.innerHTML = "";
  labels.forEach((label, k) => {
    const item = document.createElement("span");
    item.className = "key-item";
    const dot = document.createElement("i");
    dot.style.background = CLASS_COLOURS[k % 10];
    item.appendChild(dot);
    item.appendChild(document.createTextNode(String(label)));
    key.appendChild(item);
  });
  const view = readView(), L = state.lastFrame ? state.lastFrame.layers : {};
  const sampled = L.boundary && L.boundary.sampled;
  $("lg-boundary").hidden = !view.boundary;
  $("lg-boundary-text").textContent = sampled ? "decision boundary (sampled)" : "exact decision boundary";
  $("lg-contour").hidden = !view.contours;
  $("lg-plane").hidden = !view.hyperplanes;
  $("lg-points").textContent = (view.gradnorm ? "point size: per-sample gradient norm; " : "") +
    (view.show_test ? "hollow: test" : "");
}
// ---------------------------------------------------------------- network panel
// one column per hidden layer with +/- buttons (they edit the widths field, so form, server and
// URL stay in sync) and a thumbnail per unit: its activation over the view
function setWidths(widths) {
  $("widths").value = widths.join(",");
  $("depth").value = widths.length;
  sendConfig();
}
function currentWidths() {
  return $("widths").value.split(",").map((s) => parseInt(s.trim(), 10)).filter((v) => v > 0);
}
function drawNetwork(frame) {
  const box = $("net-layers");
  if (!state.data || state.data.mode === "regress") return;
  const widths = state.data.config.widths, U = frame && frame.layers.units;
  if (box.dataset.widths !== widths.join(",")) {  // rebuild the columns when the architecture changes
    box.dataset.widths = widths.join(",");
    box.innerHTML = "";
    widths.forEach((w, l) => {
      const col = document.createElement("div");
      col.className = "net-layer";
      const head = document.createElement("div");
      head.className = "lh";
      const minus = document.createElement("button"), plus = document.createElement("button");
      minus.textContent = "−"; plus.textContent = "+";
      minus.title = "one unit fewer"; plus.title = "one unit more";
      minus.dataset.layer = plus.dataset.layer = l;
      minus.className = "unit-remove"; plus.className = "unit-add";
      minus.onclick = () => { const ws = currentWidths(); if (ws[l] > 1) { ws[l]--; setWidths(ws); } };
      plus.onclick = () => { const ws = currentWidths(); ws[l]++; setWidths(ws); };
      const label = document.createElement("span");
      label.textContent = `${w} unit${w === 1 ? "" : "s"}`;
      head.append(minus, label, plus);
      const tiles = document.createElement("canvas");  // all of a layer's thumbnails: one canvas
      tiles.className = "net-tiles";
      tiles.dataset.shown = "0";
      col.append(head, tiles);
      const more = document.createElement("div");
      more.className = "net-more";
      col.appendChild(more);
      box.appendChild(col);
    });
  }
  if (!U || !U.layers) return;
  // thumbnails refresh a few times a second: one image per layer (many small canvases cost the
  // browser more compositing than all the geometry)
  const now = performance.now();
  if (frame && state.unitsDrawn && now - state.unitsDrawn < 250 && frame.meta.playing) return;
  state.unitsDrawn = now;
  const g = U.grid, cols = 4, tile = g + 1;
  U.layers.forEach((layer, l) => {
    const col = box.children[l];
    if (!col) return;
    const canvas = col.querySelector(".net-tiles"), rows = Math.ceil(layer.shown / cols);
    canvas.width = cols * tile - 1;
    canvas.height = Math.max(1, rows * tile - 1);
    canvas.style.width = `${cols * 27}px`;
    canvas.style.height = `${rows * 27}px`;
    canvas.dataset.shown = String(layer.shown);
    col.querySelector(".net-more").textContent = layer.width > layer.shown ? `+${layer.width - layer.shown} more` : "";
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(canvas.width, canvas.height);
    img.data.fill(205);  // the gaps between tiles: grey, so an all-zero (white) unit still shows
    for (let j = 0; j < layer.shown; j++) {
      const ox = (j % cols) * tile, oy = Math.floor(j / cols) * tile;
      for (let r = 0; r < g; r++) {
        for (let k = 0; k < g; k++) {
          const q = layer.values[j * g * g + (g - 1 - r) * g + k], t = (q - 127.5) / 127.5;
          const rgb = t >= 0 ? [8, 119, 189] : [245, 147, 34], a = Math.abs(t);
          const o = 4 * ((oy + r) * canvas.width + ox + k);
          img.data[o] = Math.round(255 + (rgb[0] - 255) * a);
          img.data[o + 1] = Math.round(255 + (rgb[1] - 255) * a);
          img.data[o + 2] = Math.round(255 + (rgb[2] - 255) * a);
        }
      }
    }
    ctx.putImageData(img, 0, 0);
  });
}
// ---------------------------------------------------------------- zoom and pan
// wheel: zoom about the cursor; drag: pan; double-click: back to the data's window. The server
// recomputes the exact geometry for the new window (the view carries it, as does the share URL).
function setWindow(w) {
  state.viewWindow = w;
  history.replaceState(null, "", "?" + toQuery());
  send({ type: "view", view: readView() });
  draw();
}
function wireZoom() {
  const canvas = $("view");
  const toData = (ev) => {
    const r = canvas.getBoundingClientRect(), [x0, x1, y0, y1] = currentWindow();
    return [x0 + (x1 - x0) * (ev.clientX - r.left) / r.width, y1 - (y1 - y0) * (ev.clientY - r.top) / r.height];
  };
  canvas.addEventListener("wheel", (ev) => {
    if (!state.data || state.data.mode === "regress") return;
    ev.preventDefault();
    const f = ev.deltaY > 0 ? 1.25 : 0.8, [px, py] = toData(ev), [x0, x1, y0, y1] = currentWindow();
    setWindow([px + (x0 - px) * f, px + (x1 - px) * f, py + (y0 - py) * f, py + (y1 - py) * f]);
  }, { passive: false });
  let drag = null;
  canvas.addEventListener("mousedown", (ev) => {
    if (state.data && state.data.mode !== "regress") drag = { start: toData(ev), window: currentWindow().slice() };
  });
  window.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    const r = canvas.getBoundingClientRect(), [x0, x1, y0, y1] = drag.window;
    const dx = -(ev.movementX || 0) * (x1 - x0) / r.width, dy = (ev.movementY || 0) * (y1 - y0) / r.height;
    const w = currentWindow();
    state.viewWindow = [w[0] + dx, w[1] + dx, w[2] + dy, w[3] + dy];
    draw();
  });
  window.addEventListener("mouseup", () => { if (drag) { drag = null; setWindow(state.viewWindow); } });
  canvas.addEventListener("dblclick", () => setWindow(null));
}
function syncMetricLayer(depth) {
  const el = $("v-metric_layer");
  el.max = Math.max(1, depth);
  if (parseInt(el.value, 10) > Math.max(1, depth)) {
    el.value = Math.max(1, depth);
    send({ type: "view", view: readView() });
  }
}
function recordTrail(frame) {
  const sp = frame && frame.layers.spline;
  if (!sp || !sp.breakpoints) return;
  state.trails.push(Array.from(sp.breakpoints, (b, i) => [b, sp.values[i]]));
  if (state.trails.length > 60) state.trails.shift();
}

// ---------------------------------------------------------------- curves
function drawCurves(curves, mode) {
  const c = $("curves"), ctx = c.getContext("2d"), W = c.width, H = c.height;
  ctx.clearRect(0, 0, W, H);
  if (!curves || !curves.epoch.length) return;
  const ep = curves.epoch, e1 = Math.max(1, ep.at(-1));
  const X = (e) => 30 + (W - 40) * e / e1;
  const losses = curves.loss.concat(curves.test_loss).filter((v) => v !== null && v > 0 && isFinite(v));
  if (!losses.length) return;
  const lo = Math.log10(Math.min(...losses)), hi = Math.log10(Math.max(...losses)) + 1e-9;
  const Yl = (v) => 10 + (H - 30) * (1 - (Math.log10(v) - lo) / (hi - lo || 1));
  const Ya = (v) => 10 + (H - 30) * (1 - v);
  const line = (vals, Y, colour, dash) => {
    ctx.strokeStyle = colour; ctx.setLineDash(dash); ctx.lineWidth = 1.5; ctx.beginPath();
    let started = false;
    vals.forEach((v, i) => {
      if (v === null || !(v > 0 || Y === Ya)) return;
      started ? ctx.lineTo(X(ep[i]), Y(v)) : ctx.moveTo(X(ep[i]), Y(v));
      started = true;
    });
    ctx.stroke(); ctx.setLineDash([]);
  };
  line(curves.loss, Yl, "#0877bd", []);
  line(curves.test_loss, Yl, "#0877bd", [4, 3]);
  if (mode !== "regress") {
    line(curves.accuracy, Ya, "#f59322", []);
    line(curves.test_accuracy, Ya, "#f59322", [4, 3]);
  }
  ctx.fillStyle = "#666"; ctx.font = "10px system-ui";
  ctx.fillText(`loss ${fmt(10 ** hi, 2)}`, 2, 10);
  ctx.fillText(fmt(10 ** lo, 2), 2, H - 20);
  ctx.textAlign = "right";
  ctx.fillText(`epoch ${e1}`, W - 4, H - 4);
  ctx.textAlign = "left";
  ctx.fillStyle = "#0877bd"; ctx.fillText("— loss (log)", 4, H - 4);
  if (mode !== "regress") { ctx.fillStyle = "#f59322"; ctx.fillText("— accuracy", 72, H - 4); }
  ctx.fillStyle = "#666"; ctx.fillText("- - test", 136, H - 4);
}

// ---------------------------------------------------------------- controls
// each mode remembers its own data size and noise (a spline view wants a dozen points, a
// classifier hundreds)
const MODE_DATA = { classify: { n: "500", noise: "0.1" }, regress: { n: "20", noise: "0.05" } };
function switchMode() {
  const next = $("mode-regress").checked ? "regress" : "classify", prev = next === "regress" ? "classify" : "regress";
  MODE_DATA[prev] = { n: $("n").value, noise: $("noise").value };
  $("n").value = MODE_DATA[next].n;
  $("noise").value = MODE_DATA[next].noise;
  sendConfig();
}
const MAX_LINK_WEIGHTS = 20000;  // ~107 KB of URL: past that, export the model instead
function wire() {
  const q = fromQuery();
  if (location.hash.startsWith("#w=")) state.pendingWeights = location.hash.slice(3);
  writeForm(q.cfg, q.view);
  for (const el of document.querySelectorAll("[data-key], [data-feature]")) el.addEventListener("change", sendConfig);
  for (const el of document.querySelectorAll("input[name=mode]")) el.addEventListener("change", switchMode);
  // widths decide the depth: typing 8,8,8 makes 3 hidden layers (form, server and URL agree)
  $("widths").addEventListener("change", () => {
    const w = $("widths").value.split(",").map((s) => s.trim()).filter((s) => s);
    $("depth").value = w.length;
  }, true);
  $("depth").addEventListener("change", () => {
    const d = Math.max(0, parseInt($("depth").value, 10) || 0);
    let w = $("widths").value.split(",").map((s) => s.trim()).filter((s) => s);
    while (w.length < d) w.push(w.length ? w.at(-1) : "16");
    $("widths").value = w.slice(0, d).join(",");
  }, true);
  for (const el of document.querySelectorAll("[data-view]")) {
    el.addEventListener("change", () => {
      history.replaceState(null, "", "?" + toQuery());
      send({ type: "view", view: readView() });
      drawLegend();
      draw();
    });
  }
  wireZoom();
  $("layer-add").addEventListener("click", () => {
    const ws = currentWidths();
    if (ws.length < SERVER.max_depth) { ws.push(ws.length ? ws.at(-1) : 8); setWidths(ws); }
  });
  $("layer-remove").addEventListener("click", () => {
    const ws = currentWidths();
    if (ws.length) { ws.pop(); setWidths(ws); }
  });
  $("play").addEventListener("click", () => send({ type: state.playing ? "pause" : "play" }));
  $("step").addEventListener("click", () => send({ type: "step" }));
  window.addEventListener("resize", () => draw());
  $("reset").addEventListener("click", () => { state.trails = []; send({ type: "reset" }); });
  const scrub = $("scrub");
  scrub.addEventListener("input", () => { state.scrubbing = true; send({ type: "scrub", index: parseInt(scrub.value, 10) }); });
  scrub.addEventListener("change", () => { state.scrubbing = false; });
  document.addEventListener("keydown", (e) => {
    if (e.code === "Space" && !["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName)) {
      e.preventDefault();
      $("play").click();
    }
  });
  $("upload").addEventListener("change", () => {
    const file = $("upload").files[0];
    if (!file) return;
    $("err-upload").textContent = "";
    if (file.size > MAX_UPLOAD_BYTES) {
      $("err-upload").textContent = `CSV: the file is ${file.size.toLocaleString()} bytes, above the limit of ` +
        `${MAX_UPLOAD_BYTES.toLocaleString()}`;
      $("upload").value = "";
      return;
    }
    const reader = new FileReader();
    reader.onload = () => {
      $("mode-classify").checked = true;
      updateModeClasses();
      state.keepUploadError = false;
      send({ type: "upload", name: file.name, text: String(reader.result) });
    };
    reader.onerror = () => { $("err-upload").textContent = "CSV: the file could not be read"; };
    reader.readAsText(file);
  });
  $("share").addEventListener("click", async () => {
    history.replaceState(null, "", "?" + toQuery());
    const note = state.uploaded ? " (uploaded data is not part of the link)" : "";
    try { await navigator.clipboard.writeText(location.href); $("share-note").textContent = "Link copied" + note; }
    catch (e) { $("share-note").textContent = "Link is in the address bar" + note; }
  });
  $("share-weights").addEventListener("click", () => {
    const cfg = state.data && state.data.config;
    if (!cfg) return;
    const sizes = [cfg.mode === "regress" ? 1 : cfg.features.length, ...cfg.widths,
      cfg.mode === "regress" ? 1 : state.data.n_classes];
    const n = sizes.slice(1).reduce((t, b, i) => t + (sizes[i] + 1) * b, 0);
    if (n > MAX_LINK_WEIGHTS) {
      $("share-note").textContent = `${n.toLocaleString()} weights are too many for a link ` +
        `(at most ${MAX_LINK_WEIGHTS.toLocaleString()}); use Model (.pt2)`;
      return;
    }
    send({ type: "get_weights" });
  });
  $("export-model").addEventListener("click", () => {
    if (!state.session) return;
    window.location.href = `/api/export/model?session=${encodeURIComponent(state.session)}`;
  });
  $("export-report").addEventListener("click", async () => {
    if (!state.session) return;
    $("share-note").textContent = "Writing the report…";
    const image = $("view").toDataURL("image/png");
    const r = await fetch(`/api/export/report?session=${encodeURIComponent(state.session)}`,
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ image }) });
    if (!r.ok) { $("share-note").textContent = `Report failed: ${(await r.text()).slice(0, 200)}`; return; }
    const blob = await r.blob(), a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = "netatlas-report.html"; a.click();
    $("share-note").textContent = "Report downloaded";
  });
}

wire();
connect();
