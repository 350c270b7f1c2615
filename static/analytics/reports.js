// Draws the report charts from the page's <script id="report-charts" type="application/json">:
// {canvasId: {type, labels, series: {name: [values]}, y2?: {name: [values]}}}. Chart.js is vendored.
(function () {
  "use strict";
  var palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#4b5563"];
  function draw() {
    var source = document.getElementById("report-charts");
    if (!source || typeof Chart === "undefined") return;
    var charts = JSON.parse(source.textContent);
    Object.keys(charts).forEach(function (id) {
      var spec = charts[id];
      var canvas = document.getElementById(id);
      if (!canvas) return;
      if (spec.type === "scatter") { drawScatter(canvas, spec); return; }
      var datasets = Object.keys(spec.series).map(function (name, i) {
        var color = palette[i % palette.length];
        return { label: name, data: spec.series[name], borderColor: color, backgroundColor: color,
                 spanGaps: true, tension: 0.2, pointRadius: spec.type === "line" ? 2 : 0, yAxisID: "y" };
      });
      var scales = { y: { beginAtZero: true } };
      if (spec.y2) {
        Object.keys(spec.y2).forEach(function (name) {
          datasets.push({ label: name, data: spec.y2[name], type: "line", borderColor: "#9ca3af",
                          pointRadius: 0, yAxisID: "y2" });
        });
        scales.y2 = { position: "right", min: 0, max: 1, grid: { drawOnChartArea: false } };
      }
      new Chart(canvas, { type: spec.type || "line", data: { labels: spec.labels, datasets: datasets },
                          options: { animation: false, responsive: true, maintainAspectRatio: false, scales: scales } });
      canvas.dataset.rendered = "true";
    });
  }
  // {type: "scatter", points: [{label, x, y, main?}], x_title, y_title, reference?: {label, y}}: one
  // labelled point per variant (`main` ones drawn larger), and a horizontal reference line
  function drawScatter(canvas, spec) {
    var styles = ["circle", "triangle", "rect", "rectRot", "star", "crossRot"];
    var datasets = spec.points.map(function (p, i) {
      var color = palette[i % palette.length];
      return { label: p.label, data: [{ x: p.x, y: p.y }], borderColor: color, backgroundColor: color,
               pointRadius: p.main ? 9 : 6, pointStyle: styles[Math.floor(i / palette.length) % styles.length] };
    });
    if (spec.reference && spec.points.length) {
      var xs = spec.points.map(function (p) { return p.x; });
      datasets.push({ label: spec.reference.label, showLine: true, pointRadius: 0, borderDash: [6, 4],
                      borderColor: "#9ca3af", backgroundColor: "#9ca3af",
                      data: [{ x: Math.min.apply(null, xs), y: spec.reference.y },
                             { x: Math.max.apply(null, xs), y: spec.reference.y }] });
    }
    new Chart(canvas, { type: "scatter", data: { datasets: datasets },
                        options: { animation: false, responsive: true, maintainAspectRatio: false,
                                   plugins: { legend: { position: "right", labels: { usePointStyle: true } } },
                                   scales: { x: { grace: "5%", title: { display: true, text: spec.x_title } },
                                             y: { grace: "5%", title: { display: true, text: spec.y_title } } } } });
    canvas.dataset.rendered = "true";
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
