// Model card of one version: training data, held-out and served metrics, calibration, effort-aware curve,
// feature importance, gate evidence, registry links.
"use strict";
const { el, fmt } = UI;
const version = location.pathname.split("/").filter(Boolean).pop();

function render(doc) {
  document.getElementById("title").textContent = `Model card · ${doc.model_name} v${doc.version}`;
  const r = doc.registry;
  document.getElementById("meta").replaceChildren(el("dl", {},
    el("dt", {}, "aliases"), el("dd", {}, doc.aliases.length ? doc.aliases.map((a) => UI.chip(a, "alias")) : "–"),
    el("dt", {}, "registered"), el("dd", {}, fmt.time(doc.created_at)),
    el("dt", {}, "status / gate"), el("dd", {}, (doc.status || "–") + " / " + (doc.gate || "–")),
    el("dt", {}, "threshold"), el("dd", {}, fmt.num(doc.threshold)),
    el("dt", {}, "model URI"), el("dd", {}, el("code", {}, r.model_uri)),
    el("dt", {}, "run"), el("dd", {}, r.run_url ? el("a", { href: r.run_url }, doc.run_id) : el("code", {}, doc.run_id || "–")),
    el("dt", {}, "registry"), el("dd", {}, r.version_url ? el("a", { href: r.version_url }, r.tracking_uri) : [r.tracking_uri, el("br"), el("span", { class: "muted" }, "browse: " + r.browse)])));
  const d = doc.training_data;
  document.getElementById("data").replaceChildren(d ? el("dl", {},
    el("dt", {}, "commits"), el("dd", {}, d.rows),
    el("dt", {}, "window"), el("dd", {}, fmt.day(d.since) + " – " + fmt.day(d.until)),
    el("dt", {}, "defect-inducing / clean"), el("dd", {}, `${d.defect_inducing ?? "–"} / ${d.clean ?? "–"}`),
    el("dt", {}, "base rate"), el("dd", {}, fmt.pct(d.base_rate)),
    el("dt", {}, "fingerprint"), el("dd", {}, el("code", {}, doc.dataset_fingerprint || "–")))
    : el("p", { class: "muted" }, "This version has no training reference snapshot."));
  const held = Object.entries(doc.held_out);
  document.getElementById("held-out").replaceChildren(held.length
    ? UI.table(["metric", "value", "95 % interval"], held.map(([k, v]) => {
      const ci = (doc.held_out_intervals || {})[k];
      return el("tr", {}, el("td", {}, k), el("td", { class: "num" }, fmt.num(v)),
        el("td", { class: "num" }, ci ? `${fmt.num(ci[0])} – ${fmt.num(ci[1])}` : "–"));
    }))
    : el("p", { class: "muted" }, "No held-out metric was logged with the training run."));

  const served = doc.served;
  const note = document.getElementById("served-note");
  if (served.error) note.textContent = served.error;
  else {
    // Labels known when the version was trained are its training rows (a request for an older commit), no
    // evidence of how it does live: the API leaves them out and says how many.
    const were = (n) => (n === 1 ? "was" : "were");
    const learnt = served.labels_learnt_at
      ? `, dated after v${doc.version} was trained`
      : " (a cross-project starter: it learnt none of this repository's labels)";
    note.textContent = `${served.n_matured} served predictions of this version have matured labels${learnt}` +
      (served.label_sources ? " (" + Object.entries(served.label_sources).map(([s, n]) => `${s}: ${n}`).join(", ") + ")" : "") +
      (served.known_when_trained ? `; ${served.known_when_trained} more ${were(served.known_when_trained)} known when v${doc.version} was trained: its training rows, not counted` : "") +
      " (every such label known now, whenever it arrived; monitoring judges each window on the labels that arrived in it). " +
      "Intervals: 95 % bootstrap. " + (served.note || "");
    const metrics = served.metrics || [];
    UI.chart("served", {
      data: { labels: metrics.map((m) => m.metric), datasets: [
        { type: "bar", label: "95 % interval", data: metrics.map((m) => (m.low === null ? null : [m.low, m.high])), backgroundColor: "#c9d8f0" },
        { type: "scatter", label: "value", data: metrics.map((m) => ({ x: m.value, y: m.metric })), backgroundColor: "#1f5fbf", pointRadius: 5 }] },
      options: { indexAxis: "y", scales: { x: { min: 0, max: 1 }, y: { type: "category", labels: metrics.map((m) => m.metric) } } },
    });
    document.getElementById("served-table").replaceChildren(metrics.length ? UI.table(["metric", "value", "95 % interval"],
      metrics.map((m) => el("tr", {}, el("td", {}, m.metric), el("td", { class: "num" }, fmt.num(m.value)),
        el("td", { class: "num" }, m.low === null ? "–" : `${fmt.num(m.low)} – ${fmt.num(m.high)}`)))) : "");
    const cal = served.calibration || [];
    UI.chart("calibration", {
      type: "scatter",
      data: { datasets: [
        { label: "observed defect rate per score bin", data: cal.map((p) => ({ x: p.predicted, y: p.observed })), showLine: true, borderColor: "#1f5fbf", backgroundColor: "#1f5fbf" },
        { label: "perfect calibration", data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true, borderColor: "#999", borderDash: [4, 4], pointRadius: 0 }] },
      options: { scales: { x: { min: 0, max: 1, title: { display: true, text: "predicted" } }, y: { min: 0, max: 1, title: { display: true, text: "observed" } } } },
    });
    const curve = served.effort_curve || { model: [], optimal: [] };
    const xy = (points) => points.map(([x, y]) => ({ x, y }));
    UI.chart("effort", {
      type: "scatter",
      data: { datasets: [
        { label: "model (risk per line)", data: xy(curve.model), showLine: true, pointRadius: 0, borderColor: "#1f5fbf" },
        { label: "optimal", data: xy(curve.optimal), showLine: true, pointRadius: 0, borderColor: "#2e7d32", borderDash: [4, 4] },
        { label: "random", data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true, pointRadius: 0, borderColor: "#999" }] },
      options: { scales: { x: { min: 0, max: 1, title: { display: true, text: "share of churn inspected" } }, y: { min: 0, max: 1, title: { display: true, text: "share of defects found" } } } },
    });
  }
  const importance = doc.importance.error ? [] : doc.importance;
  UI.chart("importance", {
    type: "bar",
    data: { labels: importance.map((i) => i.feature), datasets: [{ label: "mean |contribution| (log-odds)", data: importance.map((i) => i.mean_abs_contribution), backgroundColor: "#1f5fbf" }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } } },
  });
  const gate = doc.gate_evidence.error ? [] : doc.gate_evidence;
  document.getElementById("gate").replaceChildren(gate.length ? UI.table(["when", "action", "alias", "who", "why", ""], gate.map((e) => el("tr", {},
      el("td", {}, fmt.time(e.at)), el("td", {}, UI.chip(e.action)), el("td", {}, e.alias), el("td", {}, e.who), el("td", {}, e.why),
      el("td", {}, el("details", {}, el("summary", {}, "evidence"), el("pre", {}, JSON.stringify(e.evidence, null, 2)))))))
    : el("p", { class: "muted" }, "No registry event names this version."));
}

UI.get("/ui/api/models/" + encodeURIComponent(version)).then(render).catch((e) => UI.fail("meta", e));
