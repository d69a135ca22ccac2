/* Live deal page: polls live.json every few seconds and the preflight on a slower timer,
   updates the numbers in place and draws purchases/s (and, with the waiting room, shoppers
   admitted/s) as an inline SVG. No build step. */
(function () {
  "use strict";
  var root = document.getElementById("live-console");
  if (!root) { return; }
  var liveUrl = root.dataset.liveUrl;
  var preflightUrl = root.dataset.preflightUrl;
  var refreshMs = parseInt(root.dataset.refreshMs, 10) || 2000;
  var preflightMs = parseInt(root.dataset.preflightMs, 10) || 15000;
  var SVG = "http://www.w3.org/2000/svg";

  function byId(id) { return document.getElementById(id); }
  function setText(id, value) {
    var el = byId(id);
    if (el) { el.textContent = value === null || value === undefined ? "-" : String(value); }
  }
  function fetchJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) { throw new Error(body.message || response.statusText); }
          return body;
        });
      });
  }

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  // Clock time of epoch second `t` in the console's zone (the server's offset, not the
  // browser's zone): "13:32:26".
  function zoneTime(t, offsetS) {
    return new Date((t + offsetS) * 1000).toISOString().substr(11, 8);
  }
  // A round step for about `ticks` ticks up to `peak` (1, 2, 5 times a power of ten).
  function niceStep(peak, ticks) {
    var raw = peak / ticks, power = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) { if (steps[i] * power >= raw) { return Math.max(1, steps[i] * power); } }
    return Math.max(1, 10 * power);
  }

  // Purchases per second: x is time (epoch seconds from rate.start, labelled in the console's
  // zone), y the count per second.
  function drawChart(rate, admitted) {
    var svg = byId("live-chart");
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var offsetS = parseInt(svg.dataset.zoneOffsetS, 10) || 0, abbr = svg.dataset.zoneAbbr || "";
    var n = rate.accepted.length, width = 900, height = 220;
    var left = 56, right = 12, top = 10, bottom = 40;
    var plotW = width - left - right, plotH = height - top - bottom;
    var peak = 0;
    var drawn = [["rejected", rate.rejected], ["accepted", rate.accepted]];
    if (admitted) { drawn.unshift(["admitted", admitted]); }
    drawn.forEach(function (pair) {
      for (var i = 0; i < n; i++) { peak = Math.max(peak, pair[1][i]); }
    });
    var step = niceStep(Math.max(peak, 1), 4), yMax = Math.max(step, Math.ceil(Math.max(peak, 1) / step) * step);
    function x(i) { return left + (i / Math.max(1, n - 1)) * plotW; }
    function y(v) { return top + plotH - (v / yMax) * plotH; }
    for (var v = 0; v <= yMax; v += step) {
      svg.appendChild(el("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), "class": v ? "grid" : "axis" }));
      svg.appendChild(el("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, String(v)));
    }
    svg.appendChild(el("line", { x1: left, x2: left, y1: top, y2: top + plotH, "class": "axis" }));
    svg.appendChild(el("text", { x: 12, y: top + plotH / 2, "text-anchor": "middle",
      transform: "rotate(-90 12 " + (top + plotH / 2) + ")" }, "per second"));
    var tickEvery = n > 600 ? 300 : (n > 120 ? 60 : 10);
    for (var i = 0; i < n; i++) {
      var t = rate.start + i;
      if (t % tickEvery !== 0) { continue; }
      svg.appendChild(el("line", { x1: x(i), x2: x(i), y1: top + plotH, y2: top + plotH + 4, "class": "axis" }));
      svg.appendChild(el("text", { x: x(i), y: top + plotH + 16, "text-anchor": "middle" }, zoneTime(t, offsetS)));
    }
    svg.appendChild(el("text", { x: left + plotW / 2, y: height - 4, "text-anchor": "middle" },
      "time (" + abbr + ", the server's clock), one point per second"));
    drawn.forEach(function (pair) {
      var pts = [];
      for (var i = 0; i < n; i++) { pts.push(x(i).toFixed(1) + "," + y(pair[1][i]).toFixed(1)); }
      svg.appendChild(el("polyline", { points: pts.join(" "), "class": "series " + pair[0] }));
    });
    setText("live-peak", peak);
    setText("live-window", Math.round(n / 60) + " min, until " + zoneTime(rate.start + n - 1, offsetS) + " " + abbr);
  }

  function renderOverdue(overdue) {
    setText("live-overdue", overdue.count);
    var body = document.querySelector("#live-overdue-list tbody");
    if (!body) { return; }
    body.innerHTML = "";
    if (!overdue.list.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      var cell = document.createElement("td");
      cell.colSpan = 6;
      cell.textContent = "none";
      empty.appendChild(cell);
      body.appendChild(empty);
      return;
    }
    overdue.list.forEach(function (pending) {
      var row = document.createElement("tr");
      [pending.order_id, pending.user_id, pending.quantity,
        pending.accepted_at_text ? pending.accepted_at_text.text : pending.accepted_at, pending.age_s,
        pending.parked ? "yes" : "no"].forEach(function (value) {
        var cell = document.createElement("td");
        cell.textContent = String(value);
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
  }

  function renderRoom(room) {
    byId("live-room").hidden = !room.shown;
    document.querySelector(".room-legend").hidden = !room.shown;
    if (!room.shown) { return; }
    setText("live-room-state", room.enabled ? "on" : "off");
    setText("live-room-rate", room.rate);
    setText("live-room-rate-auto", room.rate_automatic ? " (automatic)" : "");
    setText("live-room-admission", room.admission_s);
    setText("live-room-overbooking", room.overbooking);
    setText("live-room-admitted-rate", room.admitted_recent_per_s);
    setText("live-room-seed", room.seed);
    var f = room.figures || {};
    setText("live-room-waiting", f.waiting);
    setText("live-room-joins", f.joins);
    setText("live-room-admitted-now", f.admitted_now);
    setText("live-room-admitted", f.admitted);
    setText("live-room-lapsed", f.lapsed);
    setText("live-room-revoked", f.revoked);
    setText("live-room-wait-p50", f.wait_p50_s);
    setText("live-room-wait-p95", f.wait_p95_s);
  }

  function render(data) {
    setText("live-status", data.status);
    byId("live-status").className = "status-pill status-" + data.status;
    setText("live-remaining", data.remaining);
    setText("live-remaining-source", data.remaining_source);
    setText("live-units-sold", data.units_sold);
    setText("live-orders-confirmed", data.orders_confirmed);
    setText("live-orders-cancelled", data.orders_cancelled);
    setText("live-orders-failed", data.orders_failed);
    // The server's clock, as the server writes it in the console's zone (never the browser's).
    setText("live-updated", data.server_time_text.text);
    byId("live-updated").setAttribute("title", data.server_time_text.utc + " UTC");
    if (window.FlashConsole) { window.FlashConsole.setServerNow(data.server_time_text.ms); }
    setText("live-revenue", data.revenue_text);
    setText("live-sell-through", data.sell_through_pct);
    var purchase = data.purchase;
    setText("live-purchase-answer", purchase.status + (purchase.code ? " " + purchase.code : ""));
    setText("live-purchase-detail", purchase.detail);
    byId("live-purchase").className = "purchase-hint " + (purchase.status < 300 ? "accepted"
      : (purchase.status >= 500 ? "failing" : "refused"));
    if (data.ended_at) { byId("live-ends-countdown").dataset.targetMs = "0"; }
    setText("live-error", data.redis_error || "");
    var live = data.redis;
    if (live) {
      setText("live-backlog", live.backlog);
      setText("live-stream", live.stream_length);
      setText("live-dead", live.dead_letters);
      renderOverdue(live.overdue);
      setText("live-accepted", live.outcomes.accepted);
      var total = 0;
      Object.keys(live.outcomes.rejected).forEach(function (reason) {
        total += live.outcomes.rejected[reason];
        var cell = document.querySelector('#live-rejections td[data-reason="' + reason + '"]');
        if (cell) { cell.textContent = live.outcomes.rejected[reason]; }
      });
      setText("live-rejected-total", total);
      drawChart(live.rate, data.room.shown ? data.room.admitted_per_s : null);
      var shown = document.querySelectorAll("#live-dead-letters tbody tr:not(.empty)").length;
      var note = byId("live-dead-note");
      if (live.dead_letters !== shown) {
        if (!note) {
          note = document.createElement("p");
          note.id = "live-dead-note";
          byId("live-dead-letters").insertAdjacentElement("beforebegin", note);
        }
        note.innerHTML = 'The dead-letter list changed: <a href="">reload</a> to act on it.';
      } else if (note) { note.remove(); }
    }
    renderRoom(data.room);
    var rec = data.reconciliation;
    setText("live-reconciliation", rec
      ? (rec.ok ? "books balance" : "drift found: " + JSON.stringify(rec.findings)) +
        " at " + rec.created_at_text.text
      : "never run");
  }

  function renderPreflight(data) {
    var list = byId("live-preflight");
    list.innerHTML = "";
    data.checks.forEach(function (check) {
      var item = document.createElement("li");
      item.className = check.ok ? "ok" : "fail";
      item.dataset.check = check.name;
      var label = document.createElement("strong");
      label.textContent = check.label + " ";
      var detail = document.createElement("span");
      detail.textContent = check.detail;
      item.appendChild(label);
      item.appendChild(detail);
      list.appendChild(item);
    });
  }

  function poll() {
    fetchJson(liveUrl).then(render).catch(function (err) {
      setText("live-error", "refresh failed: " + err.message);
    }).then(function () { window.setTimeout(poll, refreshMs); });
  }
  function pollPreflight() {
    fetchJson(preflightUrl).then(renderPreflight).catch(function (err) {
      byId("live-preflight").innerHTML = "";
      setText("live-error", "preflight failed: " + err.message);
    }).then(function () { window.setTimeout(pollPreflight, preflightMs); });
  }
  poll();
  pollPreflight();
})();
