// The kstyle page: pick a model and a photo (and a style), stylize it on this server,
// compare before and after, download the result. Plain JavaScript; nothing is fetched
// from anywhere but this server.
"use strict";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const auth = token ? { Authorization: `Bearer ${token}` } : {};
const state = { models: {}, photo: null, style: null, resultUrl: null, busy: false };

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function getJson(url) {
  const response = await fetch(url, { headers: auth });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${url}: HTTP ${response.status}`);
  return body;
}

function currentModel() {
  return state.models[$("model").value];
}

function fieldsOf(model) {
  const fields = {};
  for (const field of model ? model.fields : []) fields[field.name] = field;
  return fields;
}

function updateForm() {
  const model = currentModel();
  const fields = fieldsOf(model);
  const style = Object.values(fields).find((f) => f.type === "image" && f.name !== "image");
  $("style-box").hidden = !style;
  const strength = fields.strength;
  $("strength-box").hidden = !strength;
  if (strength) {
    $("strength").min = strength.low ?? 0;
    $("strength").max = strength.high ?? 1;
    if (strength.default !== null && strength.default !== undefined && !state.strengthSet) {
      $("strength").value = strength.default;
    }
    $("strength-value").textContent = Number($("strength").value).toFixed(2);
  }
  if (model) {
    $("model-info").textContent = `${model.kind || "model"} · from ${model.source}`;
  }
  $("go").disabled = state.busy || !model || !state.photo || (style && !state.style);
}

function setPhoto(file) {
  if (!file) return;
  state.photo = file;
  $("photo-name").textContent = file.name || "photo";
  $("before").src = URL.createObjectURL(file);
  showError("");
  updateForm();
}

function setStyle(file, label) {
  state.style = file;
  $("style-name").textContent = label || file.name || "style";
  for (const b of document.querySelectorAll(".paintings button")) {
    b.setAttribute("aria-pressed", String(b.dataset.label === label));
  }
  updateForm();
}

function dropZone(zone, input, onFile) {
  input.addEventListener("change", () => onFile(input.files[0]));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) onFile(e.dataTransfer.files[0]);
  });
}

function stylize() {
  const model = currentModel();
  if (!model || !state.photo || state.busy) return;
  const fields = fieldsOf(model);
  const form = new FormData();
  form.append("image", state.photo, state.photo.name || "photo");
  for (const field of Object.values(fields)) {
    if (field.type === "image" && field.name !== "image" && state.style) {
      form.append(field.name, state.style, state.style.name || "style");
    }
  }
  if (fields.strength) form.append("strength", $("strength").value);

  state.busy = true;
  updateForm();
  showError("");
  const progress = $("progress");
  progress.hidden = false;
  progress.removeAttribute("value");
  $("status").textContent = "Uploading…";
  const request = new XMLHttpRequest();
  request.open("POST", `/v1/models/${encodeURIComponent(model.name)}:stylize`);
  for (const [k, v] of Object.entries(auth)) request.setRequestHeader(k, v);
  request.setRequestHeader("Accept", "image/png");
  request.responseType = "blob";
  request.upload.onprogress = (e) => {
    if (e.lengthComputable) { progress.max = e.total; progress.value = e.loaded; }
  };
  request.upload.onload = () => {
    progress.removeAttribute("value");
    $("status").textContent = `Stylizing with ${model.name}…`;
  };
  const started = performance.now();
  request.onload = async () => {
    state.busy = false;
    progress.hidden = true;
    if (request.status === 200) {
      if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
      state.resultUrl = URL.createObjectURL(request.response);
      $("after").src = state.resultUrl;
      $("compare").hidden = false;
      const link = $("download");
      link.href = state.resultUrl;
      const stem = (state.photo.name || "photo").replace(/\.[^.]*$/, "");
      link.download = `${stem}_${model.name}.png`;
      link.hidden = false;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      $("status").textContent = `Done in ${seconds} s.`;
    } else {
      let message = `HTTP ${request.status}`;
      try { message = JSON.parse(await request.response.text()).error || message; } catch (e) { /* not JSON */ }
      if (request.status === 503) message += " (the server is busy: try again in a moment)";
      $("status").textContent = "";
      showError(message);
    }
    updateForm();
  };
  request.onerror = () => {
    state.busy = false;
    progress.hidden = true;
    $("status").textContent = "";
    showError("The server could not be reached.");
    updateForm();
  };
  request.send(form);
}

async function loadPaintings() {
  try {
    const { styles } = await getJson("/v1/styles");
    for (const painting of styles) {
      const button = document.createElement("button");
      const label = `${painting.title}, ${painting.artist} (${painting.year})`;
      button.type = "button";
      button.title = label;
      button.dataset.label = label;
      button.setAttribute("aria-pressed", "false");
      const img = document.createElement("img");
      img.src = painting.url;
      img.alt = label;
      button.append(img);
      button.addEventListener("click", async () => {
        const blob = await (await fetch(painting.url)).blob();
        setStyle(new File([blob], painting.file, { type: blob.type }), label);
      });
      $("paintings").append(button);
    }
  } catch (e) {
    $("paintings").textContent = "";
  }
}

async function loadModels() {
  for (let attempt = 0; ; attempt++) {
    try {
      const { models } = await getJson("/v1/models");
      const select = $("model");
      select.textContent = "";
      for (const model of models) {
        state.models[model.name] = model;
        const option = document.createElement("option");
        option.value = model.name;
        option.textContent = model.name + (model.takes_style ? " (takes a style)" : "");
        select.append(option);
      }
      select.disabled = false;
      updateForm();
      return;
    } catch (e) {
      if (attempt > 60) { showError(e.message); return; }
      $("status").textContent = `Waiting for the server: ${e.message}`;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      $("status").textContent = "";
    }
  }
}

$("model").addEventListener("change", updateForm);
$("strength").addEventListener("input", () => {
  state.strengthSet = true;
  $("strength-value").textContent = Number($("strength").value).toFixed(2);
});
$("strength").addEventListener("change", () => { if (state.resultUrl) stylize(); });
$("split").addEventListener("input", () => {
  $("after-clip").style.clipPath = `inset(0 0 0 ${$("split").value}%)`;
});
$("go").addEventListener("click", stylize);
dropZone($("photo-drop"), $("photo"), setPhoto);
dropZone($("style-drop"), $("style"), (file) => setStyle(file));
loadModels();
loadPaintings();
