// The intake queue: re-read the rows every few seconds while the page is visible, so each
// record's stage and status follow the workers without a reload.
"use strict";

(function () {
  const body = document.getElementById("queue-rows");
  if (!body) return;
  const EVERY_MS = 2000;

  async function refresh() {
    if (document.visibilityState !== "visible") return;
    try {
      const response = await fetch(body.dataset.src, { credentials: "same-origin" });
      if (response.redirected) {
        window.location.reload(); // signed out meanwhile: show the sign-in page
        return;
      }
      if (response.ok) body.innerHTML = await response.text();
    } catch (e) {
      // offline for a moment: the next round tries again
    }
  }
  window.setInterval(refresh, EVERY_MS);
})();
