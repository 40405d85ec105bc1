// facecast live page: portrait picking and upload, microphone or file audio up the WebSocket at
// 16 kHz, JPEG frames down onto the canvas, the voice played back delayed by the measured
// pipeline lag so lips and voice match, controls while talking, latency and fps shown.
"use strict";

const HEADER_BYTES = 32; // "FCF1", uint32 index, float64 t, float64 sent, float32 server ms, float32 render ms
const $ = (id) => document.getElementById(id);
const probe = new URLSearchParams(location.search).has("probe");

const S = {
  ws: null, hello: null, ready: null, imageId: null, portraits: [],
  ctx: null, worklet: null, source: null, delay: null, mic: null, fileBuffer: null,
  streaming: false, mode: null, firstSentAt: null, firstPaintAt: null, c0: null, sentSamples: 0,
  startLatencyMs: null, serverStartLatencyMs: null, lastIndex: -1, paints: [], lagMs: null, delayS: 0.12,
  chunkRms: [], log: [], serverStats: null, errors: [], ended: false, readyWaiter: null,
};
window.facecastLive = S; // for diagnostics and the browser test

// ---- status and errors ------------------------------------------------------------------
function status(text) { $("status").textContent = text; }
function showError(text) {
  const e = $("error");
  e.textContent = text; e.hidden = !text;
  if (text) S.errors.push(text);
}
function overlay(text) { const o = $("overlay"); o.textContent = text || ""; o.hidden = !text; }

// ---- portraits ----------------------------------------------------------------------------
async function loadPortraits() {
  const r = await fetch("/api/portraits");
  S.portraits = await r.json();
  renderPortraits();
  if (!S.imageId && S.portraits.length) selectPortrait(S.portraits[0].image_id);
}

function renderPortraits() {
  const box = $("portraits");
  box.textContent = "";
  for (const p of S.portraits) {
    const b = document.createElement("button");
    b.type = "button";
    b.setAttribute("role", "radio");
    b.setAttribute("aria-checked", String(p.image_id === S.imageId));
    b.dataset.id = p.image_id;
    b.title = p.name;
    const img = document.createElement("img");
    img.alt = p.name; img.src = p.thumbnail; img.loading = "lazy";
    b.append(img, document.createTextNode(p.name.replace(" (sample)", "")));
    b.onclick = () => selectPortrait(p.image_id);
    box.append(b);
  }
}

function selectPortrait(id) {
  S.imageId = id;
  for (const b of $("portraits").children) b.setAttribute("aria-checked", String(b.dataset.id === id));
  const p = S.portraits.find((q) => q.image_id === id);
  if (p && !S.streaming) {
    const img = new Image();
    img.onload = () => { const g = $("view").getContext("2d"); g.drawImage(img, 0, 0, 512, 512); };
    img.src = p.thumbnail;
  }
  if (S.streaming) start(); // restart with the new face
}

$("upload").addEventListener("change", async (ev) => {
  const f = ev.target.files[0];
  if (!f) return;
  showError("");
  if (f.size > 15 * 1024 * 1024) { showError(`${f.name} is too large (at most 15 MB).`); return; }
  status(`Analysing ${f.name}…`);
  const fd = new FormData();
  fd.append("image", f, f.name);
  try {
    const r = await fetch("/api/portrait", { method: "POST", body: fd });
    const body = await r.json().catch(() => ({ error: `upload failed (${r.status})` }));
    if (!r.ok) { showError(body.error || `upload failed (${r.status})`); status("The upload was refused."); return; }
    S.portraits = S.portraits.filter((p) => p.image_id !== body.image_id).concat([body]);
    renderPortraits();
    selectPortrait(body.image_id);
    status(`${f.name} is ready.` + (body.notices.length ? " " + body.notices.join(" ") : ""));
  } catch (e) {
    showError(`upload failed: ${e}`);
  } finally {
    ev.target.value = "";
  }
});

// ---- controls -----------------------------------------------------------------------------
function controls() {
  const emo = $("emotion").value;
  return {
    emotion: emo === "neutral" ? "neutral" : `${emo}:${$("intensity").value}`,
    gaze: [Number($("gazeyaw").value), Number($("gazepitch").value)],
    motion_scale: Number($("motion").value),
    expression_scale: Number($("expression").value),
  };
}
let controlsTimer = null;
function controlsChanged() {
  for (const [id, out] of [["intensity", "o-intensity"], ["gazeyaw", "o-gazeyaw"], ["gazepitch", "o-gazepitch"],
    ["motion", "o-motion"], ["expression", "o-expression"]]) $(out).textContent = $(id).value;
  if (controlsTimer) return;
  controlsTimer = setTimeout(() => {
    controlsTimer = null;
    if (S.streaming) send({ type: "controls", controls: controls() });
  }, 80);
}
for (const id of ["emotion", "intensity", "gazeyaw", "gazepitch", "motion", "expression"]) $(id).addEventListener("input", controlsChanged);

// ---- socket -------------------------------------------------------------------------------
function send(obj) { if (S.ws && S.ws.readyState === 1) S.ws.send(JSON.stringify(obj)); }

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  S.ws = ws;
  ws.onopen = () => status("Connected. Pick a portrait and press Start.");
  ws.onclose = () => {
    if (S.ws !== ws) return;
    status("Disconnected from the server; reconnecting…");
    stopAudio();
    setTimeout(connect, 1000);
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") onMessage(JSON.parse(ev.data));
    else onFrame(ev.data);
  };
}

function onMessage(m) {
  if (m.type === "hello") {
    S.hello = m;
    if (!S.imageId && m.default_image_id) S.imageId = m.default_image_id;
    loadPortraits();
  } else if (m.type === "ready") {
    S.ready = m;
    if (S.readyWaiter) { S.readyWaiter.resolve(m); S.readyWaiter = null; }
  } else if (m.type === "stats") {
    S.serverStats = m;
    if (m.start_latency_ms != null) S.serverStartLatencyMs = m.start_latency_ms;
    $("st-dropped").textContent = String(m.frames_dropped);
    $("st-render").textContent = m.render_ms != null ? `${m.render_ms.toFixed(0)} ms` : "–";
    showStats();
  } else if (m.type === "error") {
    showError(m.message);
    if (S.readyWaiter) { S.readyWaiter.reject(new Error(m.message)); S.readyWaiter = null; }
  } else if (m.type === "ended") {
    S.ended = true;
    status(`Done: ${m.frames} frames for ${m.audio_s.toFixed(1)} s of audio.`);
  }
}

// ---- frames -------------------------------------------------------------------------------
function onFrame(buf) {
  const dv = new DataView(buf);
  if (buf.byteLength <= HEADER_BYTES || dv.getUint32(0, false) !== 0x46434631) return; // "FCF1"
  const index = dv.getUint32(4, true), t = dv.getFloat64(8, true);
  const serverMs = dv.getFloat32(24, true), renderMs = dv.getFloat32(28, true);
  const arrived = performance.now();
  createImageBitmap(new Blob([new Uint8Array(buf, HEADER_BYTES)], { type: "image/jpeg" })).then((bmp) => {
    if (index <= S.lastIndex || !S.ready) { bmp.close(); return; } // stale (a newer one is up)
    S.lastIndex = index;
    $("view").getContext("2d").drawImage(bmp, 0, 0, 512, 512);
    const painted = performance.now();
    overlay("");
    if (S.firstPaintAt === null) {
      S.firstPaintAt = painted;
      S.startLatencyMs = painted - S.firstSentAt;
    }
    S.paints.push(painted);
    while (S.paints.length && painted - S.paints[0] > 2000) S.paints.shift();
    // lag: how long after its audio entered the page this frame was painted (context clock)
    const lag = S.ctx.currentTime - (S.c0 + t);
    S.lagMs = S.lagMs === null ? lag * 1000 : 0.9 * S.lagMs + 100 * lag;
    syncDelay();
    const entry = { i: index, t, arrived, painted, lag_ms: lag * 1000, server_ms: serverMs, render_ms: renderMs, rms: rmsAt(t) };
    if (probe && S.ready && S.ready.mouth_box) entry.mouth = mouthProbe(bmp, S.ready.mouth_box);
    if (S.log.length < 5000) S.log.push(entry);
    bmp.close();
    showStats();
  }).catch(() => {});
}

let probeCanvas = null;
function mouthProbe(bmp, box) {
  // the mouth region as a 16 x 8 grey thumbnail (for the browser test)
  if (!probeCanvas) probeCanvas = new OffscreenCanvas(16, 8);
  const g = probeCanvas.getContext("2d", { willReadFrequently: true });
  g.drawImage(bmp, box[0], box[1], box[2], box[3], 0, 0, 16, 8);
  const d = g.getImageData(0, 0, 16, 8).data;
  const out = new Array(128);
  for (let i = 0; i < 128; i++) out[i] = Math.round(0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2]);
  return out;
}

function rmsAt(t) {
  // loudest 20 ms chunk within a frame of t (the audio this frame shows)
  let best = 0;
  for (let k = Math.max(0, Math.floor((t - 0.04) / 0.02)); k <= Math.floor((t + 0.04) / 0.02) && k < S.chunkRms.length; k++) {
    best = Math.max(best, S.chunkRms[k]);
  }
  return best;
}

function syncDelay() {
  // play the voice as late as the frames show it: lag, plus about a display frame, less the output latency
  if (!S.delay || S.lagMs === null) return;
  const out = S.ctx.outputLatency || S.ctx.baseLatency || 0;
  const target = Math.min(1.5, Math.max(0, S.lagMs / 1000 + 0.016 - out));
  if (Math.abs(target - S.delayS) > 0.015) {
    S.delayS = target;
    S.delay.delayTime.setTargetAtTime(target, S.ctx.currentTime, 0.15);
  }
}

function showStats() {
  if (S.startLatencyMs !== null) {
    $("st-latency").textContent = `${S.startLatencyMs.toFixed(0)} ms`;
    $("st-latency").title = S.serverStartLatencyMs != null ? `server side: ${S.serverStartLatencyMs.toFixed(0)} ms` : "";
  }
  const p = S.paints;
  const fps = p.length > 2 ? (p.length - 1) / ((p[p.length - 1] - p[0]) / 1000) : 0;
  S.fps = fps;
  $("st-fps").textContent = p.length > 2 ? fps.toFixed(1) : "–";
  $("st-delay").textContent = S.delay ? `${(S.delayS * 1000).toFixed(0)} ms` : "–";
}

// ---- audio --------------------------------------------------------------------------------
async function ensureAudio() {
  if (!S.ctx) {
    S.ctx = new AudioContext({ latencyHint: "interactive" });
    await S.ctx.audioWorklet.addModule("/static/capture-worklet.js");
  }
  if (S.ctx.state !== "running") await S.ctx.resume();
}

function onChunk(ev) {
  const { samples, t } = ev.data;
  if (!S.streaming || !S.ws || S.ws.readyState !== 1) return;
  if (S.c0 === null) S.c0 = t;
  let e = 0;
  for (let i = 0; i < samples.length; i++) e += samples[i] * samples[i];
  S.chunkRms.push(Math.sqrt(e / samples.length));
  S.ws.send(samples.buffer);
  S.sentSamples += samples.length;
  if (S.firstSentAt === null) S.firstSentAt = performance.now();
}

function stopAudio() {
  if (S.worklet) { S.worklet.port.postMessage("stop"); S.worklet.disconnect(); S.worklet = null; }
  if (S.source) { try { S.source.onended = null; if (S.source.stop) S.source.stop(); } catch (e) { /* not started */ } S.source.disconnect(); S.source = null; }
  if (S.delay) { S.delay.disconnect(); S.delay = null; }
  if (S.mic) { for (const tr of S.mic.getTracks()) tr.stop(); S.mic = null; }
  S.streaming = false;
  $("start").disabled = false;
  $("stop").disabled = true;
}

async function start() {
  showError("");
  stopAudio();
  Object.assign(S, { ready: null, ended: false, firstSentAt: null, firstPaintAt: null, startLatencyMs: null,
    serverStartLatencyMs: null, c0: null, sentSamples: 0, lastIndex: -1, paints: [], lagMs: null, chunkRms: [], log: [] });
  const mode = document.querySelector("input[name=source]:checked").value;
  try {
    await ensureAudio();
    let source;
    if (mode === "mic") {
      S.mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
      source = S.ctx.createMediaStreamSource(S.mic);
    } else {
      const f = $("audiofile").files[0];
      if (!f) { showError("Choose an audio file first."); return; }
      let buffer;
      try { buffer = await S.ctx.decodeAudioData(await f.arrayBuffer()); } catch (e) { showError(`${f.name}: this browser cannot decode it.`); return; }
      source = S.ctx.createBufferSource();
      source.buffer = buffer;
    }
    // a new clip on the server
    const ready = new Promise((resolve, reject) => { S.readyWaiter = { resolve, reject }; });
    send({ type: "start", image_id: S.imageId, controls: controls(), fps: 25, audio_format: "f32le" });
    status("Starting…");
    await ready;
    S.worklet = new AudioWorkletNode(S.ctx, "facecast-capture", { processorOptions: { batch: 320 }, numberOfOutputs: 1 });
    S.worklet.port.onmessage = onChunk;
    const mute = S.ctx.createGain(); mute.gain.value = 0;
    S.worklet.connect(mute).connect(S.ctx.destination); // keeps the worklet pulled
    S.delay = S.ctx.createDelay(2.0);
    S.delay.delayTime.value = S.delayS;
    const monitor = $("monitor").checked;
    source.connect(S.worklet);
    if (monitor) source.connect(S.delay).connect(S.ctx.destination);
    S.source = source;
    S.mode = mode;
    S.streaming = true;
    $("start").disabled = true;
    $("stop").disabled = false;
    if (mode === "file") {
      source.onended = () => setTimeout(() => { if (S.source === source) { send({ type: "stop" }); stopAudio(); } }, 300);
      source.start();
      status("Playing the file…");
    } else {
      status("Listening: speak into the microphone.");
    }
  } catch (e) {
    stopAudio();
    showError(e && e.name === "NotAllowedError" ? "The microphone was not allowed." : String(e.message || e));
    status("Not started.");
  }
}

$("start").onclick = start;
$("stop").onclick = () => { if (S.streaming) send({ type: "stop" }); stopAudio(); status("Stopped."); };
document.querySelectorAll("input[name=source]").forEach((r) => r.addEventListener("change", () => {
  $("monitor").checked = r.value === "file" && r.checked;
}));

connect();
