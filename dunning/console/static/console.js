// Live updates for the console: the overview's table polls its JSON every few seconds and
// rewrites the numbers in place; the sparklines draw sends and deliveries per minute.
"use strict";

(function () {
  var POLL_MS = 3000;

  function drawSpark(canvas) {
    var ctx = canvas.getContext("2d");
    if (!ctx) { return; }
    var sent = (canvas.dataset.sent || "").split(",").map(Number);
    var delivered = (canvas.dataset.delivered || "").split(",").map(Number);
    var top = Math.max(1, Math.max.apply(null, sent.concat(delivered)));
    var w = canvas.width, h = canvas.height, step = w / Math.max(1, sent.length);
    ctx.clearRect(0, 0, w, h);
    [[sent, "#2b6cb0"], [delivered, "#2f855a"]].forEach(function (pair, k) {
      ctx.fillStyle = pair[1];
      pair[0].forEach(function (v, i) {
        var bar = Math.round((v / top) * (h - 2));
        ctx.fillRect(i * step + k * step / 2, h - bar, step / 2 - 1, bar);
      });
    });
  }

  function show(value) { return value === null || value === undefined ? "-" : String(value); }

  function apply(table, data) {
    Object.keys(data.channels).forEach(function (name) {
      var row = table.querySelector('tr[data-channel="' + name + '"]');
      if (!row) { return; }
      var values = data.channels[name];
      row.querySelectorAll("[data-field]").forEach(function (cell) {
        cell.textContent = show(values[cell.dataset.field]);
      });
      row.classList.toggle("over", values.dead_over_threshold);
      var spark = row.querySelector("canvas.spark");
      if (spark) {
        spark.dataset.sent = values.sent.join(",");
        spark.dataset.delivered = values.delivered.join(",");
        drawSpark(spark);
      }
    });
    var taken = document.getElementById("taken-at");
    if (taken) { taken.textContent = data.taken_at; }
    var warnings = document.getElementById("warnings");
    if (warnings) {
      warnings.replaceChildren.apply(warnings, data.warnings.map(function (text) {
        var li = document.createElement("li");
        li.textContent = text;
        return li;
      }));
    }
    var problem = document.getElementById("overview-problem");
    if (problem) { problem.textContent = data.problem || ""; problem.hidden = !data.problem; }
    var state = document.getElementById("dlq-state");
    if (state) {
      var over = data.dlq_over_threshold;
      state.className = over.length ? "error" : "ok";
      state.textContent = over.length
        ? "Dead-letter queues over the threshold: " + over.join(", ")
        : "Every dead-letter queue is within the threshold.";
    }
    table.dataset.updates = String(Number(table.dataset.updates || "0") + 1);
  }

  function poll(table) {
    fetch(table.dataset.live, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.redirected || !r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (data) { apply(table, data); })
      .catch(function () { /* a missed refresh shows the previous numbers; the next one retries */ })
      .finally(function () { setTimeout(function () { poll(table); }, POLL_MS); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas.spark").forEach(drawSpark);
    var live = document.querySelector("table[data-live]");
    if (live) { setTimeout(function () { poll(live); }, POLL_MS); }
  });
})();
