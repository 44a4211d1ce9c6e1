// Read the shop's QR with the phone's camera (qr-scanner, from npm) and send its text to
// the server, which answers with the price. Without a camera, the upload form does it.
"use strict";

(function () {
  const section = document.getElementById("scan");
  if (!section) return;
  const start = section.querySelector("[data-start-camera]");
  const camera = section.querySelector("[data-camera]");
  const video = section.querySelector("[data-video]");
  const status = section.querySelector("[data-scan-status]");
  const form = section.querySelector("[data-qr-form]");
  const text = (name) => section.dataset["text" + name[0].toUpperCase() + name.slice(1)];
  const say = (message) => { status.textContent = message; };
  let scanner = null;

  if (!window.QrScanner || !navigator.mediaDevices) return;  // the upload form remains
  start.hidden = false;

  const read = (result) => {
    scanner.stop();
    camera.hidden = true;
    start.hidden = false;
    say(text("read"));
    const body = new FormData(form);
    body.delete("qr_image");
    body.set("qr_text", result.data);
    htmx.ajax("POST", form.getAttribute("hx-post"), {
      target: "#step",
      values: Object.fromEntries(body),
    });
  };

  start.addEventListener("click", async () => {
    start.hidden = true;
    camera.hidden = false;
    say(text("starting"));
    try {
      scanner = scanner || new QrScanner(video, read, {
        preferredCamera: "environment",
        maxScansPerSecond: 10,
        returnDetailedScanResult: true,
      });
      await scanner.start();
      say(text("point"));
    } catch (problem) {
      camera.hidden = true;
      say(text("denied"));
    }
  });
})();

// Once the price arrives (camera or upload), bring it into view: on a phone it is below.
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target.id !== "step") return;
  const heading = event.detail.target.querySelector("h2, [role=alert]");
  if (!heading) return;
  heading.setAttribute("tabindex", "-1");
  heading.focus();
  heading.scrollIntoView({ block: "start" });
});
