// Every <time data-countdown datetime="…"> shows the minutes and seconds left, live.
"use strict";

(function () {
  const pad = (n) => String(n).padStart(2, "0");
  const tick = () => {
    for (const element of document.querySelectorAll("time[data-countdown]")) {
      const left = Math.max(0, Math.floor((Date.parse(element.dateTime) - Date.now()) / 1000));
      element.textContent = `${Math.floor(left / 60)}:${pad(left % 60)}`;
    }
  };
  tick();
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSwap", tick);
})();
