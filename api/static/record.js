// The record page: correcting the fields through the JSON API (PATCH /api/v1/records/CODE).
"use strict";

(function () {
  const form = document.getElementById("edit-form");
  if (!form) return;
  const result = document.getElementById("edit-result");
  const initial = Object.fromEntries(new FormData(form).entries());

  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    const changes = {};
    for (const [name, value] of new FormData(form).entries()) {
      if (value !== initial[name]) changes[name] = value === "" ? null : value;
    }
    if (Object.keys(changes).length === 0) return;
    const answer = await window.dangan.api(
      "PATCH", "/api/v1/records/" + encodeURIComponent(form.dataset.code), changes
    );
    if (answer.ok) {
      result.textContent = form.dataset.saved;
      window.location.reload();
    } else {
      result.textContent = window.dangan.errorMessage(answer, "HTTP " + answer.status);
      result.className = "error";
    }
  });
})();
