// The record page, through the JSON API: correcting the fields (PATCH /api/v1/records/CODE),
// asking for a key change (POST /api/v1/records/CODE/change-requests), and a status-change
// decision's link to its application (PUT and DELETE /api/v1/records/CODE/decision).
"use strict";

(function () {
  function say(element, message, isError) {
    element.textContent = message;
    element.className = isError ? "error" : "ok";
  }

  function path(code, rest) {
    return "/api/v1/records/" + encodeURIComponent(code) + (rest || "");
  }

  function tagList(text) {
    return text.split(/[,，]/).map((t) => t.trim()).filter((t) => t !== "");
  }

  async function send(result, method, url, body, done) {
    const answer = await window.dangan.api(method, url, body);
    if (answer.ok) {
      say(result, done, false);
      window.location.reload();
    } else {
      say(result, window.dangan.errorMessage(answer, "HTTP " + answer.status), true);
    }
  }

  const edit = document.getElementById("edit-form");
  if (edit) {
    const result = document.getElementById("edit-result");
    const initial = Object.fromEntries(new FormData(edit).entries());
    edit.addEventListener("submit", function (e) {
      e.preventDefault();
      const changes = {};
      for (const [name, value] of new FormData(edit).entries()) {
        if (value === initial[name]) continue;
        if (name === "tags") changes.tags = tagList(value);
        else changes[name] = value === "" ? null : value;
      }
      if (Object.keys(changes).length === 0) return;
      send(result, "PATCH", path(edit.dataset.code), changes, edit.dataset.saved);
    });
  }

  const ask = document.getElementById("change-form");
  if (ask) {
    const result = document.getElementById("change-result");
    const initial = Object.fromEntries(new FormData(ask).entries());
    ask.addEventListener("submit", function (e) {
      e.preventDefault();
      const body = {};
      for (const [name, value] of new FormData(ask).entries()) {
        if (name === "reason") body.reason = value;
        else if (value !== initial[name]) {
          if (name === "year") body.year = Number(value);
          else body[name] = value === "" ? null : value;
        }
      }
      send(result, "POST", path(ask.dataset.code, "/change-requests"), body, ask.dataset.filed);
    });
  }

  const link = document.getElementById("decision-form");
  if (link) {
    const result = document.getElementById("decision-result");
    link.addEventListener("submit", function (e) {
      e.preventDefault();
      const form = Object.fromEntries(new FormData(link).entries());
      const body = {
        application_code: form.application_code || null,
        application_pages: form.application_pages || null,
        approver: form.approver_user ? null : form.approver || null,
        approver_user: form.approver_user || null,
        decision_date: form.decision_date,
        decision: form.decision,
      };
      send(result, "PUT", path(link.dataset.code, "/decision"), body, link.dataset.saved);
    });
    const clear = document.getElementById("decision-clear");
    if (clear) {
      clear.addEventListener("click", function () {
        if (clear.dataset.confirm && !window.confirm(clear.dataset.confirm)) return;
        send(result, "DELETE", path(link.dataset.code, "/decision"), undefined, link.dataset.saved);
      });
    }
  }
})();
