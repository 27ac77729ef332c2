// Overview: what serves, traffic, the last heal cycles, versions and their alias history, admin actions.
"use strict";
const { el, fmt } = UI;

// "low ≥ 0.094, medium ≥ 0.188, high ≥ 0.3761 (base rate 18.8%)": minimal is below low. The cuts as the API
// shows them (never rounded below the cut; the commits page shows scores against them, enough digits each).
function bandsText(b) {
  const s = b.shown;
  const cuts = `low ≥ ${s.low}, medium ≥ ${s.medium}, high ≥ ${s.high}`;
  const rate = b.base_rate !== null ? ` (base rate ${fmt.pct(b.base_rate)})` : " (base rate unknown)";
  return cuts + rate + (b.low_derived ? "; low derived from a three-band model" : "");
}

function modelCard(title, model, extra) {
  if (!model) return el("section", {}, el("h2", {}, title), el("p", { class: "muted" }, "none"));
  return el("section", {}, el("h2", {}, title),
    el("dl", {},
      el("dt", {}, "version"), el("dd", {}, el("a", { href: "/ui/models/" + model.version }, "v" + model.version)),
      el("dt", {}, "threshold"), el("dd", {}, fmt.num(model.threshold)),
      el("dt", {}, "bands"), el("dd", {}, bandsText(model.risk_bands)),
      el("dt", {}, "scorer"), el("dd", {}, model.scorer),
      el("dt", {}, "loaded"), el("dd", {}, fmt.time(model.loaded_at)),
      extra || []));
}

function render(doc) {
  const s = doc.serving;
  document.getElementById("title").textContent = "Overview · " + doc.model_name;
  document.getElementById("serving").replaceChildren(
    modelCard("Champion", s.champion),
    modelCard("Challenger", s.challenger),
    el("section", {}, el("h2", {}, "Traffic split"),
      el("dl", {}, el("dt", {}, "mode"), el("dd", {}, s.traffic.mode),
        el("dt", {}, "challenger share"), el("dd", {}, fmt.pct(s.traffic.share, 0)),
        el("dt", {}, "ready"), el("dd", {}, s.ready ? "yes" : "no"),
        s.last_error ? [el("dt", {}, "last error"), el("dd", { class: "error" }, s.last_error)] : [])));

  const t = doc.traffic;
  UI.chart("rate", {
    type: "bar",
    data: { labels: t.hours.map((h) => h.slice(11, 16)),
      datasets: [{ label: "served", data: t.served_per_hour, backgroundColor: "#1f5fbf" },
                 { label: "shadow", data: t.shadow_per_hour, backgroundColor: "#9db7e0" }] },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
  document.getElementById("latency").replaceChildren(t.latency.length
    ? UI.table(["route", "requests", "mean", "p50", "p95"], t.latency.slice(0, 8).map((r) => el("tr", {},
        el("td", {}, r.method + " " + r.route), el("td", { class: "num" }, r.requests),
        el("td", { class: "num" }, fmt.num(r.mean_ms, 1) + " ms"), el("td", { class: "num" }, fmt.num(r.p50_ms, 1) + " ms"),
        el("td", { class: "num" }, fmt.num(r.p95_ms, 1) + " ms"))))
    : el("p", { class: "muted" }, "No requests measured by this worker yet."));

  const heal = doc.heal;
  const cycles = document.getElementById("cycles");
  if (heal.error) cycles.replaceChildren(el("p", { class: "error" }, heal.error));
  else {
    const monitor = heal.last_monitor;
    cycles.replaceChildren(
      monitor ? el("p", {}, "Last monitor: ", UI.chip(monitor.outcome), " ", fmt.time(monitor.at), " — ", monitor.reason)
              : el("p", { class: "muted" }, "No monitor step recorded yet."),
      heal.cycles.length ? UI.table(["cycle", "steps"], heal.cycles.map((c) => el("tr", {},
        el("td", {}, fmt.time(c.at)),
        el("td", {}, c.steps.map((step) => el("div", {}, UI.chip(step.step + ": " + step.outcome, step.outcome), " ", step.reason))))))
        : el("p", { class: "muted" }, "The heal loop has not run for this model."));
  }

  const versions = doc.versions;
  document.getElementById("versions").replaceChildren(versions.error ? el("p", { class: "error" }, versions.error)
    : UI.table(["version", "aliases", "created", "status", "gate", "ROC AUC", "fingerprint"], versions.map((v) => el("tr", {},
        el("td", {}, el("a", { href: "/ui/models/" + v.version }, "v" + v.version)),
        el("td", {}, v.aliases.map((a) => UI.chip(a, "alias"))), el("td", {}, fmt.time(v.created_at)),
        el("td", {}, v.status || "–"), el("td", {}, v.gate || "–"), el("td", { class: "num" }, fmt.num(v.roc_auc)),
        el("td", { class: "hide-narrow" }, el("code", {}, (v.dataset_fingerprint || "–").slice(0, 16)))))));

  const history = doc.alias_history;
  document.getElementById("history").replaceChildren(history.error ? el("p", { class: "error" }, history.error)
    : UI.table(["when", "alias", "action", "versions", "who", "why"], history.map((e) => el("tr", {},
        el("td", {}, fmt.time(e.at)), el("td", {}, e.alias), el("td", {}, UI.chip(e.action)),
        el("td", {}, (e.from_version ? "v" + e.from_version : "–") + " → " + (e.to_version ? "v" + e.to_version : "–")),
        el("td", {}, e.who), el("td", {}, e.why)))));
}

async function admin(method, url, body) {
  const result = document.getElementById("admin-result");
  const answer = await UI.send(method, url, body, document.getElementById("admin-token").value.trim());
  result.className = answer.ok ? "" : "error";
  result.textContent = answer.ok ? `Done: champion v${answer.detail.champion ? answer.detail.champion.version : "–"}, traffic ${answer.detail.traffic.mode}`
                                 : `Refused (${answer.status}): ${answer.detail}`;
  if (answer.ok) load();
}

function who() { return { who: document.getElementById("admin-who").value || "ui", why: document.getElementById("admin-why").value || "from the web UI" }; }
document.getElementById("promote").onclick = () => admin("POST", "/v1/models/promote",
  Object.assign({ version: Number(document.getElementById("promote-version").value) }, who()));
document.getElementById("rollback").onclick = () => admin("POST", "/v1/models/rollback", who());
document.getElementById("traffic").onclick = () => admin("PUT", "/v1/traffic", {
  mode: document.getElementById("traffic-mode").value, share: Number(document.getElementById("traffic-share").value) });

function load() { UI.get("/ui/api/overview").then(render).catch((e) => UI.fail("serving", e)); }
load();
