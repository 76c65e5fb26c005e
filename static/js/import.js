// Browser upload with per-file progress. Without this script the form posts all files at once.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  const input = form.querySelector("input[type=file]");
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("filelist");
  const summary = document.getElementById("upload-summary");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const PARALLEL = 3;
  let dropped = null;

  function row(file) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = file.name; // textContent: file names are never parsed as HTML
    const bar = document.createElement("div");
    bar.className = "progress";
    const fill = document.createElement("span");
    fill.style.width = "0%";
    bar.appendChild(fill);
    const status = document.createElement("span");
    status.className = "muted";
    status.textContent = "waiting";
    li.append(name, bar, status);
    list.appendChild(li);
    return { fill, status };
  }

  function post(url, body, onProgress) {
    return new Promise(function (resolve, reject) {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      if (onProgress) xhr.upload.onprogress = onProgress;
      xhr.onload = function () {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status >= 200 && xhr.status < 300 && data) resolve(data);
        else reject(new Error((data && data.error) || "HTTP " + xhr.status));
      };
      xhr.onerror = function () { reject(new Error("network error")); };
      xhr.send(body);
    });
  }

  async function upload(files) {
    list.textContent = "";
    const open = new FormData();
    open.append("expected", String(files.length));
    const batch = await post(form.dataset.openUrl, open);
    const counts = { imported: 0, duplicate: 0, rejected: 0, failed: 0 };
    const queue = files.map(function (f) { return { file: f, ui: row(f) }; });
    async function worker() {
      while (queue.length) {
        const job = queue.shift();
        const body = new FormData();
        body.append("files", job.file, job.file.name);
        job.ui.status.textContent = "uploading";
        try {
          const res = await post(batch.files_url, body, function (e) {
            if (e.lengthComputable) job.ui.fill.style.width = Math.round(100 * e.loaded / e.total) + "%";
          });
          const r = res.results[0];
          job.ui.fill.style.width = "100%";
          job.ui.status.textContent = r.status + (r.reason ? ": " + r.reason : "");
          counts[r.status] = (counts[r.status] || 0) + 1;
        } catch (err) {
          job.ui.status.textContent = "failed: " + err.message;
          counts.failed += 1;
        }
        summary.textContent = counts.imported + " imported, " + counts.duplicate + " duplicates, " +
          counts.rejected + " rejected" + (counts.failed ? ", " + counts.failed + " failed to upload" : "");
      }
    }
    await Promise.all(Array.from({ length: Math.min(PARALLEL, files.length) }, worker));
    await post(batch.close_url, new FormData());
    const link = document.createElement("a");
    link.href = batch.batch_url;
    link.textContent = "Open the batch page";
    summary.append(" · ", link);
  }

  form.addEventListener("submit", function (e) {
    const files = dropped || Array.from(input.files);
    if (!files.length) return;
    e.preventDefault();
    dropped = null;
    upload(files).catch(function (err) { summary.textContent = "Upload failed: " + err.message; });
  });
  ["dragenter", "dragover"].forEach(function (t) {
    zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (t) {
    zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) {
    dropped = Array.from(e.dataTransfer.files);
    summary.textContent = dropped.length + " files ready";
    form.requestSubmit();
  });
})();
