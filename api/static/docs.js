// Starts the vendored Swagger UI on /docs (api/pages/docs.py) from this file, not from an
// inline script, so the page keeps the strict Content-Security-Policy (api/security.py).
"use strict";

window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis],
  });
});
