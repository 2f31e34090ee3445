// The users page (admin): adding a user, disabling or enabling one and setting a password, each
// through the JSON API (/api/v1/users); a refusal shows the API's own message.
"use strict";

(function () {
  const table = document.getElementById("users");
  const status = document.getElementById("users-result");
  const addForm = document.getElementById("add-user-form");
  if (!table || !addForm) return;
  const addResult = document.getElementById("add-user-result");

  function say(el, message, isError) {
    el.textContent = message;
    el.className = isError ? "error" : "ok";
  }

  function userPath(name, what) {
    return "/api/v1/users/" + encodeURIComponent(name) + "/" + what;
  }

  addForm.addEventListener("submit", async function (e) {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(addForm).entries());
    const answer = await window.dangan.api("POST", "/api/v1/users", data);
    if (answer.ok) {
      say(addResult, addForm.dataset.added, false);
      window.location.reload();
    } else {
      say(addResult, window.dangan.errorMessage(answer, "HTTP " + answer.status), true);
    }
  });

  table.addEventListener("click", async function (e) {
    const button = e.target;
    if (!(button instanceof HTMLButtonElement) || !button.classList.contains("user-state")) return;
    const row = button.closest("tr");
    button.disabled = true;
    const answer = await window.dangan.api("POST", userPath(row.dataset.name, button.dataset.op));
    if (answer.ok) {
      window.location.reload();
    } else {
      button.disabled = false;
      say(status, window.dangan.errorMessage(answer, "HTTP " + answer.status), true);
    }
  });

  table.addEventListener("submit", async function (e) {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("password-form")) return;
    e.preventDefault();
    const row = form.closest("tr");
    const password = form.elements.namedItem("password").value;
    const answer = await window.dangan.api(
      "POST", userPath(row.dataset.name, "password"), { password: password }
    );
    if (answer.ok) {
      form.reset();
      say(status, row.dataset.name + ": " + table.dataset.passwordSet, false);
    } else {
      say(status, row.dataset.name + ": " + window.dangan.errorMessage(answer, "HTTP " + answer.status), true);
    }
  });
})();
