// Every page: register Kibo's service worker (the app shell, the offline page, Web Push),
// whose address and scope the page gives; and let the offline page's "Try again" retry the
// very address that failed rather than going home.
"use strict";

(function () {
  const script = document.currentScript;
  if ("serviceWorker" in navigator && script && script.dataset.serviceWorker) {
    window.addEventListener("load", () => {
      navigator.serviceWorker
        .register(script.dataset.serviceWorker, { scope: script.dataset.scope })
        .catch(() => {});  // without it, Kibo is a website as before
    });
  }
  document.addEventListener("click", (event) => {
    const retry = event.target.closest("[data-reload]");
    if (!retry) return;
    event.preventDefault();
    window.location.reload();
  });
})();
