/* LRE Bridge dashboard charts, drawn with the vendored uPlot (vendor/uplot, MIT).
 *
 * The page carries the figures of GET /v1/kpis (the API's own computation) in
 * <script type="application/json" id="kpi-data">. Each chart card has a server-rendered SVG and a
 * data table: without JavaScript the SVG stays; with it, uPlot draws an interactive canvas chart
 * (values under the cursor in the legend) and the SVG is hidden. The tables stay in every case.
 * The instances are kept in window.lreCharts (read by the browser tests).
 */
(function () {
  "use strict";
  var source = document.getElementById("kpi-data");
  if (!source || typeof uPlot === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var charts = {};
  window.lreCharts = charts;
  var HEIGHT = 240;

  function widthOf(el) { return Math.max(260, Math.floor(el.getBoundingClientRect().width)); }
  function dayLabel(ts) { return new Date(ts * 1000).toISOString().slice(5, 10); }
  function days() {
    return data.days.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
  }
  function bars(size) { return uPlot.paths.bars({ size: [size, 60], align: 0 }); }
  // Half a day of margin on both sides, so the first and last days' bars are whole.
  var DAY_SCALE = { time: true, range: function (u, min, max) { return [min - 43200, max + 43200]; } };

  // Draw into the card's [data-uplot] box, hide its SVG fallback, and follow the card's width.
  function mount(name, options, rows) {
    var box = document.querySelector('[data-uplot="' + name + '"]');
    if (!box) { return; }
    options.width = widthOf(box);
    options.height = HEIGHT;
    var chart = new uPlot(options, rows, box);
    charts[name] = chart;
    box.closest(".chart-card").classList.add("uplot-drawn");
    box.setAttribute("data-drawn", "uplot");
    window.addEventListener("resize", function () {
      chart.setSize({ width: widthOf(box), height: HEIGHT });
    });
  }

  // Daily volume by status, stacked: series k holds statuses 0..k summed, drawn tallest first so
  // that each shorter one covers the bottom of the previous; the legend shows each status's own count.
  (function volume() {
    var x = days();
    var raw = data.statuses.map(function (s) { return data.volume[s.key]; });
    var stacked = [];
    var running = x.map(function () { return 0; });
    raw.forEach(function (values) {
      running = running.map(function (sum, i) { return sum + values[i]; });
      stacked.push(running.slice());
    });
    var order = data.statuses.map(function (_, i) { return data.statuses.length - 1 - i; });
    var series = [{ label: data.labels.day, value: function (u, v) { return v == null ? "" : dayLabel(v); } }];
    var rows = [x];
    order.forEach(function (i) {
      var status = data.statuses[i];
      series.push({
        label: status.label, stroke: status.colour, fill: status.colour, width: 0, paths: bars(0.7),
        points: { show: false },
        value: function (u, v, si, idx) { return idx == null ? "" : String(raw[i][idx]); },
      });
      rows.push(stacked[i]);
    });
    mount("volume", {
      series: series, scales: { x: DAY_SCALE, y: { range: [0, null] } },
      axes: [{ values: function (u, ticks) { return ticks.map(dayLabel); } }, { label: data.labels.letters }],
    }, rows);
  })();

  // Acceptance-delay distribution: one bar per bucket.
  (function delays() {
    var labels = data.delays.map(function (b) { return b.label; });
    var x = labels.map(function (_, i) { return i; });
    mount("delays", {
      series: [
        { label: data.labels.delay, value: function (u, v) { return v == null ? "" : labels[v]; } },
        { label: data.labels.accepted, stroke: data.accepted_colour, fill: data.accepted_colour, width: 0,
          paths: bars(0.6), points: { show: false } },
      ],
      scales: { x: { time: false, range: [-0.5, labels.length - 0.5] }, y: { range: [0, null] } },
      axes: [{ splits: function () { return x; }, values: function (u, ticks) {
        return ticks.map(function (t) { return labels[t] || ""; }); } }, { label: data.labels.letters }],
    }, [x, data.delays.map(function (b) { return b.count; })]);
  })();

  // Technical failure rate per day (%), against the alert threshold (dashed red line).
  (function failures() {
    var x = days();
    var threshold = data.threshold * 100;
    var rates = data.failure_rates.map(function (r) { return r == null ? null : Math.round(r * 10000) / 100; });
    mount("failures", {
      series: [
        { label: data.labels.day, value: function (u, v) { return v == null ? "" : dayLabel(v); } },
        { label: data.labels.failure_rate, stroke: "#1d4ed8", width: 2, spanGaps: false,
          points: { show: true, size: 7, fill: "#1d4ed8" },
          value: function (u, v) { return v == null ? "—" : v.toFixed(2) + " %"; } },
        { label: data.labels.threshold, stroke: "#b91c1c", width: 2, dash: [6, 4], points: { show: false },
          value: function (u, v) { return v == null ? "" : v.toFixed(1) + " %"; } },
      ],
      scales: { x: DAY_SCALE, y: { range: function (u, min, max) {
        return [0, Math.max(threshold * 2, (max || 0) * 1.1)]; } } },
      axes: [{ values: function (u, ticks) { return ticks.map(dayLabel); } },
        { size: 64, values: function (u, ticks) { return ticks.map(function (t) { return t.toFixed(1) + " %"; }); } }],
    }, [x, rates, x.map(function () { return threshold; })]);
  })();
})();
