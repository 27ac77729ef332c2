// Monitoring over time: drift heat map, realized vs estimated performance, score distribution, labels and
// reviewer feedback per window, alert history.
"use strict";
const { el, fmt } = UI;

function driftColour(value) {
  if (value === null || value === undefined) return "#eeeeee";
  const v = Math.min(value, 2) / 2;  // 0 .. 2 (twice the threshold) mapped to green .. red
  const hue = 120 - 120 * v;
  return `hsl(${hue}, 70%, ${value >= 1 ? 45 : 70}%)`;
}

function render(doc) {
  const monitor = doc.monitor;
  if (monitor.error) ["drift-box", "performance-box"].forEach((box) => UI.fail(box, new Error(monitor.error)));
  else if (!monitor.windows.length) {
    // Both panels say why they are empty (the performance panel was a blank box).
    const empty = (box, text) => {
      const node = document.getElementById(box);
      node.classList.remove("chart");
      node.replaceChildren(el("p", { class: "muted" }, text));
    };
    empty("drift-box",
      "No monitored window yet: the heal loop's monitor step writes one per cycle once enough predictions are served.");
    empty("performance-box",
      "No monitored window yet: realized ROC AUC on the labels that arrived, and its CBPE estimate, are drawn per monitor step of the heal loop.");
  } else {
    const labels = monitor.windows.map((w) => fmt.day(w.until || w.at));
    const cells = [];
    monitor.windows.forEach((w, x) => w.drift.forEach((v, y) => cells.push({ x: labels[x], y: monitor.features[y], v })));
    document.getElementById("drift-box").style.height = Math.max(220, 22 * monitor.features.length + 80) + "px";
    UI.chart("drift", {
      type: "matrix",
      data: { datasets: [{ label: "drift score", data: cells, backgroundColor: (c) => driftColour(c.raw && c.raw.v),
        borderColor: "#fff", borderWidth: 1,
        width: ({ chart }) => (chart.chartArea || {}).width / labels.length - 2,
        height: ({ chart }) => (chart.chartArea || {}).height / monitor.features.length - 2 }] },
      options: { plugins: { legend: { display: false }, tooltip: { callbacks: {
          title: (items) => items[0].raw.y + " · " + items[0].raw.x,
          label: (item) => "drift score " + fmt.num(item.raw.v, 2) } } },
        scales: { x: { type: "category", labels, offset: true, grid: { display: false } },
                  y: { type: "category", labels: monitor.features, offset: true, grid: { display: false } } } },
    });
    UI.chart("performance", {
      data: { labels, datasets: [
        { type: "line", label: "realized ROC AUC", data: monitor.windows.map((w) => w.realized_roc_auc), borderColor: "#1f5fbf", yAxisID: "y" },
        { type: "line", label: "estimated ROC AUC (CBPE)", data: monitor.windows.map((w) => w.estimated_roc_auc), borderColor: "#b26a00", borderDash: [5, 4], yAxisID: "y" },
        { type: "bar", label: "matured labels", data: monitor.windows.map((w) => w.n_matured), backgroundColor: "rgba(120,130,150,.35)", yAxisID: "n" }] },
      options: { scales: { y: { min: 0, max: 1, title: { display: true, text: "ROC AUC" } },
                           n: { position: "right", beginAtZero: true, grid: { display: false }, title: { display: true, text: "labels" } } } },
    });
  }
  if (!monitor.error) {
    document.getElementById("alerts").replaceChildren(monitor.alerts.length
      ? UI.table(["when", "state", "model", "reasons"], monitor.alerts.map((a) => el("tr", {}, el("td", {}, fmt.time(a.at)),
          el("td", {}, UI.chip(a.outcome)), el("td", {}, a.champion_version ? "v" + a.champion_version : "–"),
          el("td", {}, (a.alarm_reasons.length ? a.alarm_reasons : a.reasons).slice(0, 6).map((r) => el("div", {}, r))))))
      : el("p", { class: "muted" }, "No alert or drift recorded."));
  }

  const windows = doc.log_windows;
  const names = windows.map((w) => fmt.day(w.since) + "…");
  const bins = doc.score_bins.slice(0, -1).map((b, i) => `${b.toFixed(1)}–${doc.score_bins[i + 1].toFixed(1)}`);
  const palette = ["#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"];
  UI.chart("scores", {
    type: "line",
    data: { labels: bins, datasets: windows.map((w, i) => ({ label: names[i],
      data: w.score_histogram.map((n) => (w.predictions ? n / w.predictions : 0)),
      borderColor: palette[Math.min(palette.length - 1, Math.floor(i * palette.length / Math.max(1, windows.length)))], pointRadius: 2 })) },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: "share of the window's predictions" } },
                         x: { title: { display: true, text: "predicted probability" } } } },
  });
  const sources = [...new Set(windows.flatMap((w) => Object.keys(w.labels_by_source)))].sort();
  const colours = { szz: "#6a51a3", api: "#807dba" };
  UI.chart("feedback", {
    type: "bar",
    data: { labels: names, datasets: [
      ...sources.map((s) => ({ label: "labels: " + s, data: windows.map((w) => w.labels_by_source[s] || 0), backgroundColor: colours[s] || "#9e9ac8", stack: "labels" })),
      { label: "reviewer: right", data: windows.map((w) => w.reviews_right), backgroundColor: "#2e7d32", stack: "reviews" },
      { label: "reviewer: wrong", data: windows.map((w) => w.reviews_wrong), backgroundColor: "#c62828", stack: "reviews" }] },
    options: { scales: { y: { beginAtZero: true } } },
  });
  document.getElementById("windows").replaceChildren(UI.table(["window", "predictions", "labels", "reviewer right", "reviewer wrong"],
    windows.map((w) => el("tr", {}, el("td", {}, fmt.day(w.since) + " – " + fmt.day(w.until)), el("td", { class: "num" }, w.predictions),
      el("td", {}, Object.entries(w.labels_by_source).map(([s, n]) => UI.chip(`${s}: ${n}`, "label"))),
      el("td", { class: "num" }, w.reviews_right), el("td", { class: "num" }, w.reviews_wrong)))));
}

UI.get("/ui/api/monitoring" + location.search).then(render).catch((e) => UI.fail("drift-box", e));
