// The order board: when a poll brings an order that was not there before, play a short
// tone and, if the ally allowed it, show a browser notification. The board itself
// refreshes through htmx (hx-trigger="every 5s"); this script only announces.
"use strict";

(function () {
  const tools = document.querySelector(".board-tools");
  if (!tools) return;
  const notifyButton = tools.querySelector("[data-notify]");
  const status = tools.querySelector("[data-notify-status]");
  const board = () => document.getElementById("board");
  const ids = () => new Set((board() ? board().dataset.orderIds : "").split(" ").filter(Boolean));
  const total = () => Number(board() ? board().dataset.total : 0);
  let known = ids();
  let waiting = total();
  let audio = null;

  const chime = () => {
    try {
      audio = audio || new AudioContext();
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.4);
    } catch (problem) {
      // No sound available: the board still shows the order.
    }
  };

  if ("Notification" in window && Notification.permission === "default") {
    notifyButton.hidden = false;
    notifyButton.addEventListener("click", async () => {
      const answer = await Notification.requestPermission();
      notifyButton.hidden = true;
      if (answer === "denied") status.textContent = tools.dataset.textBlocked;
    });
  }

  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id !== "board" && event.detail.elt.id !== "board") return;
    // New orders join the end of the queue: shown, or only counted when the board is full.
    const now = ids();
    const fresh = Math.max([...now].filter((id) => !known.has(id)).length, total() - waiting);
    known = now;
    waiting = total();
    if (fresh <= 0) return;
    document.body.dataset.newOrders = String(Number(document.body.dataset.newOrders || 0) + fresh);
    chime();
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      new Notification("Kibo", { body: tools.dataset.textNew, tag: "kibo-board" });
    }
  });
})();
