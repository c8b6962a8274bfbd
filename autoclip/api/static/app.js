// auto-clip web page: plain JS against the /api/v1 endpoints (no build step).
"use strict";
const $ = (id) => document.getElementById(id);
const state = { videos: [], task: null, timer: null, stages: [] };

$("api-key").value = localStorage.getItem("autoclip-key") || "";
$("api-key").addEventListener("change", () => localStorage.setItem("autoclip-key", $("api-key").value.trim()));

function headers() { return { Authorization: "Bearer " + $("api-key").value.trim() }; }
function say(text) { $("message").textContent = text || ""; }

async function api(path, options = {}) {
  const reply = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  const body = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new Error(typeof body.detail === "string" ? body.detail : `HTTP ${reply.status}`);
  return body;
}

function upload(files) {
  if (!files.length) return;
  say("");
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  const row = document.createElement("li");
  row.textContent = `uploading ${files.length} file(s)...`;
  $("uploads").appendChild(row);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/v1/videos/upload");
  xhr.setRequestHeader("Authorization", headers().Authorization);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) row.textContent = `uploading ${files.length} file(s): ${Math.round(100 * e.loaded / e.total)}%`;
  };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
    row.remove();
    if (xhr.status !== 200) { say(body.detail || `upload failed: HTTP ${xhr.status}`); return; }
    for (const item of body.results) {
      const li = document.createElement("li");
      if (item.ok) {
        state.videos.push(item.video);
        li.className = "ok";
        li.textContent = `${item.filename}: ${item.video.duration.toFixed(1)} s, ${item.video.codec}, ${(item.video.size / 1e6).toFixed(1)} MB `;
        const remove = document.createElement("button");  // the next reel is made without it
        remove.textContent = "remove";
        remove.className = "remove";
        remove.title = `leave ${item.filename} out of the next reel`;
        remove.addEventListener("click", () => {
          state.videos = state.videos.filter((v) => v.video_id !== item.video.video_id);
          li.remove();
          $("start").disabled = state.videos.length === 0;
        });
        li.appendChild(remove);
      } else {
        li.className = "error";
        li.textContent = `${item.filename}: ${item.error}`;
      }
      $("uploads").appendChild(li);
    }
    $("start").disabled = state.videos.length === 0;
  };
  xhr.onerror = () => { row.remove(); say("upload failed: the connection was closed (file too large?)"); };
  xhr.send(form);
}

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); upload([...e.dataTransfer.files]); });
$("files").addEventListener("change", (e) => { upload([...e.target.files]); e.target.value = ""; });

$("start").addEventListener("click", async () => {
  say("");
  $("start").disabled = true;
  try {
    const task = await api("/api/v1/tasks/create", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ video_ids: state.videos.map((v) => v.video_id),
                             duration: Number($("duration").value), aspect: $("aspect").value }),
    });
    state.task = task.task_id;
    state.stages = [];
    $("task").hidden = false;
    $("reel").hidden = true;
    $("clips").hidden = true;
    show(task);
    state.timer = setInterval(poll, 1000);
  } catch (e) {
    say(e.message);
    $("start").disabled = false;
  }
});

async function poll() {
  try { show(await api(`/api/v1/tasks/${state.task}`)); } catch (e) { say(e.message); }
}

function show(task) {
  $("progress").value = task.percent;
  $("state").textContent = `${task.state} ${Math.round(task.percent)}%`;
  $("stage").textContent = task.stage;
  if (task.stage && state.stages[state.stages.length - 1] !== task.stage) {
    state.stages.push(task.stage);
    const li = document.createElement("li");
    li.textContent = task.stage;
    $("stages").appendChild(li);
  }
  $("errors").textContent = task.errors.join("; ");
  if (!["COMPLETED", "FAILED", "CANCELLED", "CRASHED"].includes(task.state_type)) return;
  clearInterval(state.timer);
  $("start").disabled = false;
  if (task.state_type !== "COMPLETED") return;
  $("title").textContent = task.title || "Your reel";
  if (task.downloads.reel) { $("reel").src = task.downloads.reel; $("reel").hidden = false; }
  $("downloads").innerHTML = "";
  for (const [kind, url] of Object.entries(task.downloads)) {
    const a = document.createElement("a");
    a.href = url; a.textContent = `download ${kind}`; a.download = ""; a.id = `download-${kind}`;
    $("downloads").append(a, " ");
  }
  const body = $("clips").querySelector("tbody");
  body.innerHTML = "";
  task.clips.forEach((clip, n) => {
    const tr = document.createElement("tr");
    for (const cell of [n + 1, clip.filename, clip.start.toFixed(2), clip.end.toFixed(2), clip.duration.toFixed(2), clip.reason]) {
      const td = document.createElement("td"); td.textContent = cell; tr.appendChild(td);
    }
    body.appendChild(tr);
  });
  $("clips").hidden = false;
  $("left-out").innerHTML = "";
  for (const r of task.left_out) {
    const li = document.createElement("li"); li.className = "error";
    li.textContent = `left out ${r.filename} (${r.stage}): ${r.reason}`;
    $("left-out").appendChild(li);
  }
  for (const note of task.notes || []) {
    if (task.left_out.some((r) => r.reason === note)) continue;  // said above already
    const li = document.createElement("li"); li.textContent = note;
    $("left-out").appendChild(li);
  }
}
