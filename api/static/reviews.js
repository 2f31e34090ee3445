// The review queue: pass a gate, send a record back with a reason, or resubmit it, through
// the JSON API (POST /api/v1/records/CODE/review and /resubmit); a refusal shows the API's
// own message. The gate the page showed is sent with a decision, so a record that moved on
// since is refused (409) rather than decided at another gate.
"use strict";

(function () {
  const list = document.getElementById("reviews");
  if (!list) return;

  async function act(button) {
    const card = button.closest("section.review");
    const result = card.querySelector(".review-result");
    const code = encodeURIComponent(card.dataset.code);
    const op = button.dataset.op;
    let answer;
    if (op === "resubmit") {
      button.disabled = true;
      answer = await window.dangan.api("POST", "/api/v1/records/" + code + "/resubmit");
    } else {
      const input = card.querySelector(".review-reason-input");
      const reason = input && input.value.trim() ? input.value.trim() : null;
      if (op === "return" && !reason) {
        result.textContent = list.dataset.noReason;
        result.className = "review-result error";
        if (input) input.focus();
        return;
      }
      button.disabled = true;
      answer = await window.dangan.api("POST", "/api/v1/records/" + code + "/review", {
        decision: op,
        reason: reason,
        gate: card.dataset.gate || null,
      });
    }
    button.disabled = false;
    if (answer.ok) {
      result.textContent = list.dataset.done;
      result.className = "review-result ok";
      window.location.reload();
    } else {
      result.textContent = window.dangan.errorMessage(answer, "HTTP " + answer.status);
      result.className = "review-result error";
    }
  }

  for (const button of list.querySelectorAll("button.review-op")) {
    button.addEventListener("click", function () { act(button); });
  }
})();
