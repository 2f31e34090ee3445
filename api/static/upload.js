// The upload page: files by drag and drop or the file chooser, the fields checked before
// anything is sent, then each file POSTed to /api/v1/records on its own (two at a time) with
// its own progress bar and its own answer.
"use strict";

(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("files");
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("upload-list");
  const template = document.getElementById("upload-item");
  const formError = document.getElementById("form-error");
  const button = document.getElementById("upload-button");
  const msg = document.getElementById("messages").dataset;
  const maxBytes = Number(msg.maxBytes || 0);
  const KINDS = /\.(pdf|png|jpe?g|tiff?)$/i;
  const PARALLEL = 2;
  let pending = []; // {file, row} not yet sent

  function addFiles(files) {
    for (const file of files) {
      const row = template.content.firstElementChild.cloneNode(true);
      row.querySelector(".upload-name").textContent = file.name;
      list.appendChild(row);
      if (!KINDS.test(file.name)) {
        finish(row, "refused", msg.badKind);
      } else if (maxBytes && file.size > maxBytes) {
        finish(row, "refused", msg.tooLarge);
      } else {
        pending.push({ file: file, row: row });
      }
    }
  }

  function finish(row, state, text, code) {
    row.dataset.state = state;
    const status = row.querySelector(".upload-status");
    status.textContent = "";
    if (code) {
      const link = document.createElement("a");
      link.className = "record-link";
      link.href = "/records/" + encodeURIComponent(code);
      link.textContent = code;
      status.append(msg.stored + " → ", link);
      row.querySelector("progress").value = 100;
    } else {
      status.textContent = msg.refused ? msg.refused + ": " + text : text;
    }
  }

  function validate() {
    const fields = new FormData(form);
    const problems = [];
    if (!fields.get("business_type")) problems.push(msg.needType);
    const year = Number(fields.get("year"));
    if (!Number.isInteger(year) || year < 1900 || year > 2200) problems.push(msg.needYear);
    const no = String(fields.get("student_no") || "");
    if (no && !/^[0-9A-Za-z-]{1,32}$/.test(no)) problems.push(msg.badStudentNo);
    if (pending.length === 0) problems.push(msg.needFiles);
    formError.hidden = problems.length === 0;
    formError.textContent = problems.join(" ");
    return problems.length === 0;
  }

  function send(item, fields) {
    return new Promise(function (resolve) {
      const body = new FormData();
      for (const [name, value] of fields) {
        if (name !== "files" && value !== "") body.append(name, value);
      }
      body.append("files", item.file, item.file.name);
      const xhr = new XMLHttpRequest();
      const bar = item.row.querySelector("progress");
      const status = item.row.querySelector(".upload-status");
      item.row.dataset.state = "uploading";
      status.textContent = msg.uploading;
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 95);
        if (e.loaded === e.total) status.textContent = msg.checking;
      });
      xhr.addEventListener("load", function () {
        let answer = null;
        try {
          answer = JSON.parse(xhr.responseText);
        } catch (e) {
          answer = null;
        }
        if (xhr.status === 201 && answer && answer.records && answer.records.length) {
          finish(item.row, "stored", "", answer.records[0].archive_code);
        } else if (answer && answer.refused && answer.refused.length) {
          finish(item.row, "refused", answer.refused[0].error.message);
        } else if (answer && answer.error) {
          finish(item.row, "refused", answer.error.message);
        } else {
          finish(item.row, "refused", "HTTP " + xhr.status);
        }
        resolve();
      });
      xhr.addEventListener("error", function () {
        finish(item.row, "refused", msg.network);
        resolve();
      });
      xhr.open("POST", "/api/v1/records");
      xhr.setRequestHeader("X-CSRF-Token", window.dangan.csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.send(body);
    });
  }

  async function uploadAll() {
    const fields = Array.from(new FormData(form).entries());
    const queue = pending;
    pending = [];
    button.disabled = true;
    async function lane() {
      while (queue.length) await send(queue.shift(), fields);
    }
    const lanes = [];
    for (let i = 0; i < PARALLEL; i++) lanes.push(lane());
    await Promise.all(lanes);
    button.disabled = false;
  }

  input.addEventListener("change", function () {
    addFiles(input.files);
    input.value = "";
  });
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (e) {
      e.preventDefault();
      zone.classList.add("over");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function (e) {
      e.preventDefault();
      zone.classList.remove("over");
    });
  });
  zone.addEventListener("drop", function (e) {
    if (e.dataTransfer && e.dataTransfer.files) addFiles(e.dataTransfer.files);
  });
  zone.addEventListener("keydown", function (e) {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      input.click();
    }
  });
  document.getElementById("clear-button").addEventListener("click", function () {
    pending = [];
    list.replaceChildren();
    formError.hidden = true;
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (validate()) uploadAll();
  });
})();
