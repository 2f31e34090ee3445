// dangan's shared page script: the CSRF token for calls to the JSON API, and small helpers.
// Plain JavaScript, no framework; loaded on every page (see base.html).
"use strict";

window.dangan = (function () {
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // Call the JSON API with the session cookie and the CSRF token; resolves to
  // {ok, status, body} where body is the parsed JSON (or null).
  async function api(method, path, body) {
    const headers = { "X-CSRF-Token": csrfToken(), Accept: "application/json" };
    const init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let parsed = null;
    try {
      parsed = await response.json();
    } catch (e) {
      parsed = null;
    }
    return { ok: response.ok, status: response.status, body: parsed };
  }

  function errorMessage(result, fallback) {
    if (result && result.body && result.body.error && result.body.error.message) {
      return result.body.error.message;
    }
    return fallback;
  }

  // Elements with data-confirm ask before their form is sent.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    }
  });

  return { api: api, csrfToken: csrfToken, errorMessage: errorMessage };
})();
