// Heal: the loop's decisions over time with their evidence, shadow comparisons, promotions and rollbacks.
"use strict";
const { el, fmt } = UI;
const STEPS = ["start", "refresh", "watch", "gate", "monitor", "decide", "train", "error"];
const COLOURS = { alarm: "#c62828", error: "#c62828", rolled_back: "#c62828", rollback: "#c62828", drift: "#b26a00",
                  promoted: "#2e7d32", trained: "#2e7d32", ok: "#2e7d32", archived: "#b26a00" };

function evidence(record) {
  return el("details", {}, el("summary", {}, "evidence"), el("pre", {}, JSON.stringify(record.evidence, null, 2)));
}

function render(doc) {
  if (doc.records.error) { UI.fail("cycles", new Error(doc.records.error)); return; }
  const records = doc.records;
  UI.chart("timeline", {
    type: "scatter",
    data: { datasets: [{ label: "decisions", data: records.map((r) => ({ x: Date.parse(r.at), y: r.step, r })),
      pointRadius: 5, backgroundColor: records.map((r) => COLOURS[r.outcome] || "#1f5fbf") }] },
    options: { plugins: { legend: { display: false }, tooltip: { callbacks: {
        label: (item) => `${item.raw.r.step}: ${item.raw.r.outcome} — ${item.raw.r.reason}`.slice(0, 140) } } },
      scales: { x: { type: "linear", ticks: { callback: (v) => fmt.day(v), maxTicksLimit: 6 } },
                y: { type: "category", labels: STEPS } } },
  });
  const gates = records.filter((r) => r.step === "gate" && r.outcome !== "skipped" && r.outcome !== "none");
  document.getElementById("gates").replaceChildren(gates.length
    ? UI.table(["when", "challenger", "champion", "outcome", "reason", ""], gates.map((r) => el("tr", {}, el("td", {}, fmt.time(r.at)),
        el("td", {}, r.challenger_version ? el("a", { href: "/ui/models/" + r.challenger_version }, "v" + r.challenger_version) : "–"),
        el("td", {}, r.champion_version ? el("a", { href: "/ui/models/" + r.champion_version }, "v" + r.champion_version) : "–"),
        el("td", {}, UI.chip(r.outcome)), el("td", {}, r.reason), el("td", {}, evidence(r)))))
    : el("p", { class: "muted" }, "No shadow comparison yet."));
  const moves = doc.moves.error ? [] : doc.moves.filter((m) => m.action !== "register");
  document.getElementById("moves").replaceChildren(moves.length
    ? UI.table(["when", "action", "alias", "versions", "who", "why"], moves.map((m) => el("tr", {}, el("td", {}, fmt.time(m.at)),
        el("td", {}, UI.chip(m.action)), el("td", {}, m.alias),
        el("td", {}, (m.from_version ? "v" + m.from_version : "–") + " → " + (m.to_version ? "v" + m.to_version : "–")),
        el("td", {}, m.who), el("td", {}, m.why))))
    : el("p", { class: "muted" }, "No promotion or rollback yet."));
  const cycles = new Map();
  for (const r of records) { if (!cycles.has(r.cycle_id)) cycles.set(r.cycle_id, []); cycles.get(r.cycle_id).push(r); }
  document.getElementById("cycles").replaceChildren(...(cycles.size ? [...cycles.values()].map((steps) => el("div", { class: "card" },
      el("h2", {}, "Cycle of " + fmt.time(steps[steps.length - 1].at)),
      UI.table(["step", "outcome", "reason", ""], steps.slice().reverse().map((r) => el("tr", {}, el("td", {}, r.step),
        el("td", {}, UI.chip(r.outcome)), el("td", {}, r.reason), el("td", {}, evidence(r)))))))
    : [el("p", { class: "muted" }, "The heal loop has not run for this model.")]));
}

UI.get("/ui/api/heal").then(render).catch((e) => UI.fail("cycles", e));
