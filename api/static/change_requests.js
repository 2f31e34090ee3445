// The change requests page (directors): approve or reject one request, with a reason, through
// the JSON API (/api/v1/change-requests/ID/approve, /reject); a refusal (a stale request, one
// decided meanwhile) shows the API's own message.
"use strict";

(function () {
  const table = document.getElementById("waiting");
  if (!table) return;

  async function decide(row, button) {
    const result = row.querySelector(".result");
    const reason = row.querySelector("input.reason").value.trim();
    if (!reason) {
      result.textContent = table.dataset.reason;
      result.className = "error";
      return;
    }
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    const answer = await window.dangan.api(
      "POST",
      "/api/v1/change-requests/" + row.dataset.id + "/" + button.dataset.op,
      { reason: reason }
    );
    button.disabled = false;
    if (answer.ok) {
      result.textContent = table.dataset.done;
      result.className = "ok";
      window.location.reload();
    } else {
      result.textContent = window.dangan.errorMessage(answer, "HTTP " + answer.status);
      result.className = "error";
    }
  }

  for (const row of table.querySelectorAll("tr.change-request")) {
    for (const button of row.querySelectorAll("button[data-op]")) {
      button.addEventListener("click", function () { decide(row, button); });
    }
  }
})();
