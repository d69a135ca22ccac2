/* Countdowns on the console's pages, from instants the server gave (data-target-ms, epoch ms)
   and the server's clock: `data-server-ms` on the page's root (or FlashConsole.setServerNow
   from a JSON answer) gives the offset between the browser's clock and the server's, so a
   browser whose clock is wrong still counts down to the right moment. */
(function () {
  "use strict";
  var offsetMs = 0;
  function setServerNow(serverMs) { offsetMs = serverMs - Date.now(); }
  function serverNow() { return Date.now() + offsetMs; }
  function duration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
    var m = Math.floor(s % 3600 / 60), sec = s % 60;
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return (d ? d + "d " : "") + (d || h ? h + "h " : "") + two(m) + "m " + two(sec) + "s";
  }
  function tick() {
    var now = serverNow();
    document.querySelectorAll("[data-target-ms]").forEach(function (el) {
      var target = parseInt(el.dataset.targetMs, 10);
      if (!target) { el.textContent = ""; return; }
      el.textContent = target > now ? el.dataset.prefix + " " + duration(target - now)
        : (el.dataset.past || "now");
    });
  }
  var root = document.querySelector("[data-server-ms]");
  if (root) { setServerNow(parseInt(root.dataset.serverMs, 10)); }
  window.FlashConsole = { setServerNow: setServerNow, serverNow: serverNow, tick: tick,
    duration: duration };
  document.addEventListener("DOMContentLoaded", tick);
  window.setInterval(tick, 1000);
})();
