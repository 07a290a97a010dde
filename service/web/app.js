// modelserve's page: everything it shows comes from this service's own API (same origin, no CDN).
// No inline script or style anywhere (the Content-Security-Policy forbids both); styles set from here
// go through the CSSOM, which the policy allows.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(method, path, body) {
  const options = { method, headers: { accept: "application/json" } };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  return { ok: response.ok, status: response.status, data };
}

function bar(label, value, text, best = false) {
  const fill = el("div", { className: "fill" });
  fill.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
  return el("div", { className: best ? "bar best" : "bar" },
    el("span", { text: label }), el("div", { className: "track" }, fill), el("span", { className: "value", text }));
}

// ---- tabs ----------------------------------------------------------------------------------------
const loaders = {};
function show(name) {
  for (const tab of document.querySelectorAll(".tab")) {
    const selected = tab.getAttribute("aria-controls") === name;
    tab.setAttribute("aria-selected", String(selected));
    $(tab.getAttribute("aria-controls")).hidden = !selected;
  }
  if (loaders[name]) { const load = loaders[name]; delete loaders[name]; load(); }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

// ---- digit ---------------------------------------------------------------------------------------
const pad = $("pad");
const ink = pad.getContext("2d", { willReadFrequently: true });
let drawing = false;
let asked = 0;

function clearPad() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  $("digit-answer").textContent = "Draw a digit.";
  $("digit-answer").classList.remove("not-confident");
  delete $("digit-answer").dataset.digit;
  $("digit-bars").replaceChildren();
  $("grid").replaceChildren();
  asked += 1; // an answer still on its way belongs to the old drawing
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  ink.strokeStyle = "#000";
  ink.lineWidth = Number($("pen").value);
  ink.lineCap = "round";
  ink.lineJoin = "round";
  const [x, y] = point(event);
  ink.beginPath();
  ink.moveTo(x, y);
  ink.lineTo(x + 0.01, y);
  ink.stroke();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  for (const each of event.getCoalescedEvents ? event.getCoalescedEvents() : [event]) {
    const [x, y] = point(each);
    ink.lineTo(x, y);
  }
  ink.stroke();
});
function endStroke() {
  if (!drawing) return;
  drawing = false;
  recognise();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);
$("clear").addEventListener("click", clearPad);

function padImage() {
  // Grey levels 0..255, one row per canvas row: the service makes the 8×8 grid itself.
  const { data, width, height } = ink.getImageData(0, 0, pad.width, pad.height);
  const rows = [];
  for (let y = 0; y < height; y += 1) {
    const row = new Array(width);
    for (let x = 0; x < width; x += 1) row[x] = data[(y * width + x) * 4];
    rows.push(row);
  }
  return rows;
}

async function recognise() {
  const ticket = ++asked;
  const { ok, data } = await api("POST", "/predict/digit?pixels=true", { image: padImage() });
  if (ticket !== asked) return; // a newer stroke or a clear came since
  const answer = $("digit-answer");
  if (!ok) {
    answer.textContent = data && data.error ? data.error.message : "The service did not answer.";
    return;
  }
  answer.textContent = `${data.digit} (probability ${data.probability.toFixed(4)})` +
    (data.confident ? "" : ` — not confident: below ${data.threshold}`);
  answer.dataset.digit = String(data.digit);
  answer.classList.toggle("not-confident", !data.confident);
  $("digit-bars").replaceChildren(...data.probabilities.map((p, digit) =>
    bar(`digit ${digit}`, p, p.toFixed(4), digit === data.digit)));
  $("grid").replaceChildren(...data.pixels.map((count) => {
    const cell = el("div", { title: `${count} of 16`, "data-value": String(count) });
    const grey = Math.round(255 - (count / 16) * 255);
    cell.style.background = `rgb(${grey},${grey},${grey})`;
    return cell;
  }));
}

// ---- patient -------------------------------------------------------------------------------------
let heart = null; // GET /models/heart
let sweep = [];
let lastAnswer = null;
let explainWorks = true; // false once a service refuses `?explain=` (an older one)

function describe(spec) {
  const parts = [spec.description];
  if (spec.kind === "number") parts.push(`${spec.minimum}–${spec.maximum}${spec.unit ? ` ${spec.unit}` : ""}`);
  if (spec.nullable) parts.push("may be left blank");
  return parts.join("; ");
}

function fieldControl(spec) {
  const id = `f-${spec.name}`;
  let control;
  if (spec.kind === "category") {
    control = el("select", { id, name: spec.name });
    control.append(el("option", { value: "", text: spec.nullable ? "— not known —" : "— choose —" }));
    spec.categories.forEach((value, index) => {
      const meaning = spec.meanings && spec.meanings[index] ? spec.meanings[index] : String(value);
      control.append(el("option", { value: JSON.stringify(value), text: `${value}: ${meaning}` }));
    });
  } else {
    control = el("input", { id, name: spec.name, type: "number", inputmode: "decimal",
      min: String(spec.minimum), max: String(spec.maximum), step: spec.integer ? "1" : "any" });
  }
  control.setAttribute("aria-describedby", `${id}-help ${id}-error`);
  return el("div", { className: "field", "data-field": spec.name },
    el("label", { for: id, text: spec.name }), control,
    el("span", { className: "help", id: `${id}-help`, text: describe(spec) }),
    el("span", { className: "error", id: `${id}-error` }));
}

async function loadPatient() {
  const [info, card] = await Promise.all([api("GET", "/models/heart"), api("GET", "/models/heart/card")]);
  if (!info.ok) {
    $("fields").textContent = "The heart model is not served here.";
    $("assess").disabled = true;
    return;
  }
  heart = info.data;

  $("fields").replaceChildren(...heart.inputs.features.map(fieldControl));
  sweep = card.ok && card.data.threshold.sweep ? card.data.threshold.sweep : [];
  const slider = $("threshold");
  slider.value = String(heart.threshold);
  slider.addEventListener("input", thresholdMoved);
  $("threshold-box").hidden = sweep.length === 0;
  thresholdMoved();
}

function patientBody() {
  const body = {};
  for (const spec of heart.inputs.features) {
    const raw = $(`f-${spec.name}`).value.trim();
    if (raw === "") continue; // absent: the model treats it as missing
    body[spec.name] = spec.kind === "category" ? JSON.parse(raw) : Number(raw);
  }
  return body;
}

function clearErrors() {
  $("form-error").textContent = "";
  for (const field of document.querySelectorAll(".field")) {
    field.removeAttribute("data-invalid");
    field.querySelector(".error").textContent = "";
    field.querySelector("input, select").removeAttribute("aria-invalid");
  }
}

function showErrors(error) {
  const unplaced = [];
  for (const { field, reason } of error.fields || []) {
    const box = document.querySelector(`.field[data-field="${CSS.escape(field)}"]`);
    if (!box) { unplaced.push(`${field}: ${reason}`); continue; }
    box.setAttribute("data-invalid", "");
    box.querySelector(".error").textContent = reason;
    box.querySelector("input, select").setAttribute("aria-invalid", "true");
  }
  $("form-error").textContent = unplaced.length || !(error.fields || []).length
    ? [error.message, ...unplaced].join(" ") : "";
}

async function assess(event) {
  event.preventDefault();
  clearErrors();
  const body = patientBody();
  let reply = await api("POST", explainWorks ? "/predict/heart?explain=true" : "/predict/heart", body);
  const refusedExplain = (r) => r.status === 422 && r.data && r.data.error &&
    (r.data.error.fields || []).some((f) => f.field === "explain");
  if (explainWorks && refusedExplain(reply)) { // a service without explanations: ask again without
    explainWorks = false;
    reply = await api("POST", "/predict/heart", body);
  }
  if (!reply.ok) {
    lastAnswer = null; // nothing of the previous patient stays on screen next to this refusal
    $("missing").textContent = "";
    thresholdMoved();
    showExplanation(null);
    $("patient-answer").textContent = "Not assessed: see the fields marked.";
    if (reply.data && reply.data.error) showErrors(reply.data.error);
    else $("form-error").textContent = `The service answered ${reply.status}.`;
    return;
  }
  lastAnswer = reply.data;
  $("patient-answer").textContent = `Probability of heart disease ${lastAnswer.probability.toFixed(4)}: ` +
    `${lastAnswer.label} at the model's threshold ${lastAnswer.threshold}`;
  $("patient-answer").dataset.probability = lastAnswer.probability.toFixed(4);
  $("missing").textContent = lastAnswer.missing.length
    ? `Missing (treated as unknown): ${lastAnswer.missing.join(", ")}` : "No field missing.";
  $("threshold").value = String(lastAnswer.threshold);
  thresholdMoved();
  showExplanation(lastAnswer.explanation);
}

function thresholdMoved() {
  const t = Number($("threshold").value);
  $("threshold-value").textContent = t.toFixed(2);
  const here = sweep.find((s) => Math.abs(s.threshold - t) < 0.005);
  $("sweep").textContent = here
    ? `At ${t.toFixed(2)}, out-of-fold: sensitivity ${here.sensitivity.toFixed(3)}, specificity ${here.specificity.toFixed(3)}`
    : "";
  if (here) { $("sweep").dataset.sensitivity = here.sensitivity; $("sweep").dataset.specificity = here.specificity; }
  if (lastAnswer && heart) {
    const label = heart.labels[lastAnswer.probability >= t ? 1 : 0];
    $("threshold-label").textContent = `At threshold ${t.toFixed(2)}: ${label}`;
    $("threshold-label").dataset.label = label;
  } else {
    $("threshold-label").textContent = "";
  }
}

function contributionsOf(explanation) {
  const raw = explanation.contributions || explanation.values || {};
  if (Array.isArray(raw)) {
    return raw.map((c) => [c.feature || c.name, Number(c.contribution ?? c.value)]);
  }
  return Object.entries(raw).map(([name, value]) => [name, Number(value)]);
}

function showExplanation(explanation) {
  const box = $("explain");
  $("explain-title").hidden = !explanation;
  $("explain-note").textContent = explanation ? "" : (explainWorks ? "" : "This service gives no explanations.");
  if (!explanation) { box.replaceChildren(); return; }
  const items = contributionsOf(explanation).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  const largest = Math.max(1e-12, ...items.map(([, v]) => Math.abs(v)));
  const unit = explanation.unit || "";
  const base = explanation.base_value ?? explanation.base;
  $("explain-note").textContent = base === undefined ? unit : `base value ${Number(base).toFixed(4)} ${unit}`;
  box.replaceChildren(...items.map(([name, value]) => {
    const row = bar(name, Math.abs(value) / largest, `${value >= 0 ? "+" : ""}${value.toFixed(4)}`);
    row.querySelector(".fill").classList.add(value >= 0 ? "up" : "down");
    return row;
  }));
}

$("patient-form").addEventListener("submit", assess);

// ---- models --------------------------------------------------------------------------------------
function metricsTable(metrics) {
  const cv = metrics.cv || {};
  const test = metrics.test || {};
  const baseline = metrics.baseline || {};
  const table = el("table", {}, el("tr", {}, el("th", { text: "metric" }), el("th", { text: "CV mean ± std" }),
    el("th", { text: "baseline CV" }), el("th", { text: "test" })));
  const fmt = (v) => (typeof v === "number" ? v.toFixed(3) : "–");
  for (const [key, value] of Object.entries(cv)) {
    table.append(el("tr", {}, el("td", { text: key }), el("td", { text: `${fmt(value.mean)} ± ${fmt(value.std)}` }),
      el("td", { text: baseline[key] ? fmt(baseline[key].mean) : "–" }), el("td", { text: fmt(test[key]) })));
  }
  return table;
}

async function loadModels() {
  const list = await api("GET", "/models");
  const box = $("model-list");
  if (!list.ok) { box.textContent = "The models are not loaded."; return; }
  box.replaceChildren();
  for (const model of list.data.models) {
    const card = el("div", { className: "card" });
    box.append(el("article", { className: "model", id: `model-${model.name}` },
      el("h3", { text: model.name }),
      el("dl", {}, el("dt", { text: "version" }), el("dd", { text: model.version }),
        el("dt", { text: "sha256" }), el("dd", { text: model.sha256 }),
        el("dt", { text: "threshold" }), el("dd", { text: String(model.threshold) })),
      metricsTable(model.metrics), card));
    const answer = await api("GET", `/models/${encodeURIComponent(model.name)}/card`);
    // The card is HTML rendered by the service from the artifact's verified README (raw HTML escaped).
    if (answer.ok) card.innerHTML = answer.data.html;
    for (const img of card.querySelectorAll("img")) img.loading = "eager";
  }
}

// ---- start ---------------------------------------------------------------------------------------
loaders.patient = loadPatient;
loaders.models = loadModels;
for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => show(tab.getAttribute("aria-controls")));
}
window.addEventListener("hashchange", () => {
  const name = location.hash.slice(1);
  if (["digit", "patient", "models"].includes(name)) show(name);
});
clearPad();
show(["digit", "patient", "models"].includes(location.hash.slice(1)) ? location.hash.slice(1) : "digit");
