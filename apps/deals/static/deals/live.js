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

  function drawChart(rate, admitted) {
    var svg = byId("live-chart");
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var n = rate.accepted.length, width = 900, height = 180, pad = 4;
    var peak = 1;
    var drawn = [["rejected", rate.rejected], ["accepted", rate.accepted]];
    if (admitted) { drawn.unshift(["admitted", admitted]); }
    drawn.forEach(function (pair) {
      for (var i = 0; i < n; i++) { peak = Math.max(peak, pair[1][i]); }
    });
    function points(series) {
      var out = [];
      for (var i = 0; i < n; i++) {
        var x = (i / Math.max(1, n - 1)) * width;
        var y = height - pad - (series[i] / peak) * (height - 2 * pad);
        out.push(x.toFixed(1) + "," + y.toFixed(1));
      }
      return out.join(" ");
    }
    [0.5, 1].forEach(function (f) {
      var line = document.createElementNS(SVG, "line");
      var y = height - pad - f * (height - 2 * pad);
      line.setAttribute("x1", 0); line.setAttribute("x2", width);
      line.setAttribute("y1", y); line.setAttribute("y2", y);
      line.setAttribute("class", "grid");
      svg.appendChild(line);
    });
    drawn.forEach(function (pair) {
      var line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", points(pair[1]));
      line.setAttribute("class", "series " + pair[0]);
      svg.appendChild(line);
    });
    var any = drawn.some(function (pair) { return Math.max.apply(null, pair[1]) > 0; });
    setText("live-peak", any ? peak : 0);
    setText("live-window", Math.round(n / 60) + " min");
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
      [pending.order_id, pending.user_id, pending.quantity, pending.accepted_at, pending.age_s,
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
    setText("live-updated", new Date(data.server_time).toLocaleTimeString());
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
        " at " + new Date(rec.created_at).toLocaleTimeString()
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
