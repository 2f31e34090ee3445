// The disposition page (directors): approve or reject the selected proposals through the JSON
// API (/api/v1/disposition/approve, /reject); a refusal shows the API's own message.
"use strict";

(function () {
  const form = document.getElementById("disposition-form");
  if (!form) return;
  const result = document.getElementById("disposition-result");
  const all = document.getElementById("select-all");

  function say(message, isError) {
    result.textContent = message;
    result.className = isError ? "error" : "ok";
  }

  all.addEventListener("change", function () {
    for (const box of form.querySelectorAll("input.pick")) box.checked = all.checked;
  });

  async function decide(button) {
    const ids = Array.from(form.querySelectorAll("input.pick:checked"), (b) => Number(b.value));
    if (ids.length === 0) {
      say(form.dataset.none, true);
      return;
    }
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    const reason = document.getElementById("disposition-reason").value || null;
    button.disabled = true;
    const answer = await window.dangan.api(
      "POST", "/api/v1/disposition/" + button.dataset.op, { ids: ids, reason: reason }
    );
    button.disabled = false;
    if (answer.ok) {
      say(form.dataset.done, false);
      window.location.reload();
    } else {
      say(window.dangan.errorMessage(answer, "HTTP " + answer.status), true);
    }
  }

  for (const id of ["approve-selected", "reject-selected"]) {
    const button = document.getElementById(id);
    button.addEventListener("click", function () { decide(button); });
  }
})();
