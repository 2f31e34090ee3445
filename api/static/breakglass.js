// The break-glass and incident pages: every change goes through the JSON API
// (/api/v1/breakglass, /api/v1/incidents); a refusal shows the API's own message.
"use strict";

(function () {
  const result = document.getElementById("breakglass-result");
  if (!result) return;

  function say(answer) {
    if (answer.ok) {
      window.location.reload();
      return;
    }
    result.textContent = window.dangan.errorMessage(answer, "HTTP " + answer.status);
    result.className = "error";
  }

  function reason() {
    const field = document.getElementById("op-reason");
    return field ? field.value : "";
  }

  for (const button of document.querySelectorAll("button.op")) {
    button.addEventListener("click", async function () {
      const op = button.dataset.op;
      const body = op === "approve" ? undefined : op === "grant" ? {} : { reason: reason() };
      if (op === "grant" && reason()) body.reason = reason();
      say(await window.dangan.api("POST", "/api/v1/breakglass/" + button.dataset.grant + "/" + op, body));
    });
  }

  for (const input of document.querySelectorAll("input.paperwork")) {
    input.addEventListener("change", async function () {
      const file = input.files[0];
      if (!file) return;
      const response = await fetch("/api/v1/breakglass/" + input.dataset.grant + "/paperwork", {
        method: "POST",
        headers: { "X-CSRF-Token": window.dangan.csrfToken(), "Content-Type": file.type || "application/octet-stream" },
        credentials: "same-origin",
        body: file,
      });
      let parsed = null;
      try { parsed = await response.json(); } catch (e) { parsed = null; }
      say({ ok: response.ok, status: response.status, body: parsed });
    });
  }

  function formSender(id, build) {
    const form = document.getElementById(id);
    if (!form) return;
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const [path, body] = build(new FormData(form));
      say(await window.dangan.api("POST", path, body));
    });
  }

  formSender("grant-form", (d) => ["/api/v1/breakglass", {
    user: d.get("user"), reason: d.get("reason"), hours: Number(d.get("hours")),
  }]);
  formSender("request-form", (d) => ["/api/v1/breakglass/requests", { reason: d.get("reason") }]);
  formSender("incident-form", (d) => ["/api/v1/incidents", {
    kind: d.get("kind"),
    summary: d.get("summary"),
    records: String(d.get("records") || "").split(/\s+/).filter((c) => c),
  }]);

  for (const form of document.querySelectorAll("form.incident-op")) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const op = event.submitter ? event.submitter.dataset.op : "actions";
      const text = new FormData(form).get("text");
      say(await window.dangan.api("POST", "/api/v1/incidents/" + form.dataset.incident + "/" + op, { text: text }));
    });
  }
})();
