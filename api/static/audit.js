// The audit page: verifying the hash chain through the JSON API (POST /api/v1/audit/verify)
// and showing the report in #verify-result. The labels come translated in the form's data-*.
"use strict";

(function () {
  const form = document.getElementById("verify-form");
  if (!form) return;
  const button = document.getElementById("verify-button");
  const result = document.getElementById("verify-result");
  const text = form.dataset;

  function add(parent, tag, content, className) {
    const el = document.createElement(tag);
    if (content !== undefined && content !== null) el.textContent = String(content);
    if (className) el.className = className;
    parent.appendChild(el);
    return el;
  }

  function show(report) {
    result.replaceChildren();
    result.dataset.ok = report.ok ? "true" : "false";
    add(result, "p", report.ok ? text.intact : text.broken, report.ok ? "ok" : "error");
    const facts = add(result, "dl", null, "fields");
    add(facts, "dt", text.events);
    add(facts, "dd", report.events, "verify-events");
    add(facts, "dt", text.headId);
    add(facts, "dd", report.head_id === null ? "—" : report.head_id, "verify-head-id");
    add(facts, "dt", text.headHash);
    add(add(facts, "dd"), "code", report.head_hash || "—", "verify-head-hash");
    if (report.problems.length > 0) {
      add(result, "h3", text.problems);
      const list = add(result, "ul", null, "verify-problems");
      for (const problem of report.problems) {
        const item = add(list, "li", null, "verify-problem");
        item.dataset.eventId = String(problem.event_id);
        add(item, "strong", text.event + " " + problem.event_id + ": ");
        add(item, "span", problem.reason);
      }
    }
  }

  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    button.disabled = true;
    result.hidden = false;
    result.replaceChildren();
    delete result.dataset.ok;
    add(result, "p", text.working, "muted");
    try {
      const answer = await window.dangan.api("POST", "/api/v1/audit/verify");
      if (answer.ok) {
        show(answer.body);
      } else {
        result.replaceChildren();
        result.dataset.ok = "false";
        add(result, "p", window.dangan.errorMessage(answer, "HTTP " + answer.status), "error");
      }
    } finally {
      button.disabled = false;
    }
  });
})();
