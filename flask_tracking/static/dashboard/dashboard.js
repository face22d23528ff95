/**
 * The tracking dashboard's charts: reads the specs in <script type="application/json"
 * id="dashboard-charts"> (built by flask_tracking/dashboard/charts.py) and draws each
 * into <canvas id="chart-NAME"> with Chart.js (vendored, loaded before this file).
 * No inline script or style: sizes are set through the CSSOM, which the CSP allows.
 */
(function () {
  "use strict";

  var PALETTE = ["#1f5fbf", "#e0732b", "#2e9e5b", "#b8435a", "#7b5cc4", "#c49a1b",
    "#2b9bb0", "#8c6d52", "#9aa3b2"];

  /** A label cut to `max` characters, with an ellipsis. */
  function shorten(text, max) {
    text = String(text);
    return text.length > max ? text.slice(0, max - 1) + "\u2026" : text;
  }

  /** The Chart.js configuration of one spec. */
  function config(spec) {
    var horizontal = !!spec.horizontal;
    var datasets = spec.datasets.map(function (set, i) {
      var color = PALETTE[i % PALETTE.length];
      return {
        label: set.label,
        data: set.data,
        backgroundColor: spec.kind === "line" ? color + "33" : color,
        borderColor: color,
        borderWidth: spec.kind === "line" ? 2 : 0,
        pointRadius: spec.kind === "line" ? 2 : 0,
        fill: spec.kind === "line" && spec.datasets.length === 1,
        spanGaps: !!spec.span_gaps,
        tension: 0
      };
    });
    var category = {
      stacked: !!spec.stacked,
      title: { display: !!spec.x, text: spec.x },
      ticks: {
        autoSkip: !horizontal,
        callback: function (value) {
          var max = this.chart.width < 500 ? 14 : 28;
          return shorten(this.getLabelForValue(value), max);
        }
      }
    };
    var values = {
      stacked: !!spec.stacked,
      beginAtZero: true,
      title: { display: !!spec.y, text: spec.y },
      ticks: { precision: 0 }
    };
    return {
      type: spec.kind,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        indexAxis: horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { display: datasets.length > 1, position: "bottom" } },
        scales: horizontal ? { y: category, x: values } : { x: category, y: values }
      }
    };
  }

  function draw() {
    var block = document.getElementById("dashboard-charts");
    if (!block || typeof window.Chart !== "function") {
      return;
    }
    var specs = JSON.parse(block.textContent || "{}");
    Object.keys(specs).forEach(function (name) {
      var spec = specs[name];
      var canvas = document.getElementById("chart-" + name);
      if (!canvas) {
        return;
      }
      if (spec.horizontal) {
        // One band per row (and a little per dataset), so long lists stay readable.
        var band = 16 + 8 * spec.datasets.length;
        canvas.parentNode.style.height = Math.max(160, 70 + spec.labels.length * band) + "px";
      }
      canvas.dataset.rendered = String(!!new window.Chart(canvas, config(spec)));
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
