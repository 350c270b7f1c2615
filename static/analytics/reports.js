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
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
