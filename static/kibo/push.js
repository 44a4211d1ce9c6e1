// Web Push: the "Notify me even when Kibo is closed" button of the notices panel
// (templates/kibo/partials/_devices.html). It asks the browser's permission, subscribes
// through the service worker with Kibo's public VAPID key, and gives the subscription to
// Kibo, which then lists this device. The service worker (sw.js) shows what arrives.
"use strict";

(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  const supported = () =>
    "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

  async function send(panel, subscription) {
    const response = await fetch(panel.dataset.devicesUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf(), "HX-Request": "true" },
      body: JSON.stringify(subscription.toJSON()),
    });
    const html = await response.text();
    panel.outerHTML = html;
    const fresh = document.getElementById("devices");
    if (fresh) htmx.process(fresh);
  }

  async function subscribe(panel) {
    const status = panel.querySelector("[data-push-status]");
    if (!supported()) {
      status.textContent = panel.dataset.textUnsupported;
      return;
    }
    const permission = await Notification.requestPermission();
    if (permission !== "granted") {
      status.textContent = panel.dataset.textDenied;
      return;
    }
    try {
      const registration = await navigator.serviceWorker.ready;
      const subscription =
        (await registration.pushManager.getSubscription()) ||
        (await registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: panel.dataset.vapidKey, // base64url, as the Push API takes it
        }));
      await send(panel, subscription);
    } catch (problem) {
      status.textContent = panel.dataset.textFailed;
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-push-subscribe]");
    if (!button) return;
    const panel = button.closest("#devices");
    button.disabled = true;
    subscribe(panel).finally(() => (button.disabled = false));
  });
})();
