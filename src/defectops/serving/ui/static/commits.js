// Commits: the riskiest recent commits, filters, one commit's reasons in context, and "was this right?".
"use strict";
const { el, fmt } = UI;
const form = document.getElementById("filters");
let selected = null;

function query() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(form)) if (String(value).trim()) params.set(key, String(value).trim());
  return params;
}

function fillForm() {
  const params = new URLSearchParams(location.search);
  for (const [key, value] of params) {
    const field = form.elements[key];
    if (!field) continue;
    // The repository list arrives with the first document: keep the asked-for one selectable until then.
    if (field.tagName === "SELECT" && ![...field.options].some((o) => o.value === value)) field.append(el("option", { value }, value));
    field.value = value;
  }
}

function renderList(doc) {
  const repos = form.elements.repo;
  const current = repos.value;
  repos.replaceChildren(el("option", { value: "" }, "all"), ...doc.repositories.map((r) => el("option", { value: r }, r)));
  repos.value = current;
  document.getElementById("summary").textContent = `${doc.commits.length} commits` +
    (doc.base_rate !== null ? ` · base rate of the champion's training commits: ${fmt.pct(doc.base_rate)}` : "");
  const rows = doc.commits.map((c) => el("tr", { "data-id": c.prediction_id, onclick: () => openCommit(c.prediction_id) },
    el("td", { class: "num" }, c.probability_text, el("div", { class: "bar" }, el("span", { style: `width:${(100 * c.probability).toFixed(1)}%` }))),
    el("td", {}, UI.band(c.risk_band)),
    el("td", { class: "num hide-narrow" }, doc.base_rate !== null ? fmt.pct(doc.base_rate) : "–"),
    el("td", {}, c.repo, " ", c.url ? el("a", { href: c.url, class: "sha", onclick: (e) => e.stopPropagation() }, fmt.sha(c.commit_sha)) : el("span", { class: "sha" }, fmt.sha(c.commit_sha))),
    el("td", {}, c.author || "–"),
    el("td", { class: "hide-narrow" }, c.paths.slice(0, 3).join(", ") + (c.changed_paths > 3 ? ` (+${c.changed_paths - 3})` : "")),
    el("td", {}, c.review ? UI.chip(c.review, c.review === "right" ? "ok" : "alarm") : "–")));
  document.getElementById("commits").replaceChildren(rows.length
    ? UI.table(["probability", "band", "base rate", "commit", "author", "paths", "review"], rows)
    : el("p", { class: "muted" }, "No commit matches."));
}

function loadList() {
  const params = query();
  const list = document.getElementById("commits");
  list.dataset.state = "loading";  // "ready" once the rows of this query are drawn (tests wait for it)
  history.replaceState(null, "", "?" + params.toString());
  return UI.get("/ui/api/commits?" + params.toString()).then(renderList).catch((e) => UI.fail("commits", e))
    .finally(() => { list.dataset.state = "ready"; });
}

function renderReviews(reviews) {
  document.getElementById("reviews").replaceChildren(reviews.length
    ? UI.table(["when", "answer", "reviewer"], reviews.map((r) => el("tr", {}, el("td", {}, fmt.time(r.received_at)),
        el("td", {}, UI.chip(r.verdict, r.verdict === "right" ? "ok" : "alarm")), el("td", {}, r.reviewer || "–"))))
    : el("p", { class: "muted" }, "No reviewer has answered yet."));
}

function renderDetail(doc) {
  selected = doc.prediction_id;
  for (const row of document.querySelectorAll("tr[data-id]")) row.classList.toggle("selected", row.dataset.id === selected);
  const box = document.getElementById("detail");
  box.hidden = false;
  document.getElementById("detail-title").textContent = `${doc.repo || ""} ${fmt.sha(doc.commit_sha)}`;
  document.getElementById("detail-meta").replaceChildren(el("dl", {},
    el("dt", {}, "probability"), el("dd", {}, doc.probability_text, " ", UI.band(doc.risk_band)),
    el("dt", {}, "base rate"), el("dd", {}, doc.base_rate !== null ? fmt.pct(doc.base_rate) : "–"),
    el("dt", {}, "model"), el("dd", {}, el("a", { href: "/ui/models/" + doc.model_version }, "v" + doc.model_version)),
    el("dt", {}, "author"), el("dd", {}, doc.author || "–"),
    el("dt", {}, "commit"), el("dd", {}, doc.url ? el("a", { href: doc.url }, doc.commit_sha) : (doc.commit_sha || "–")),
    el("dt", {}, "scored"), el("dd", {}, fmt.time(doc.created_at)),
    doc.reasons_error ? [el("dt", {}, "reasons"), el("dd", { class: "error" }, doc.reasons_error)] : []));
  const reasons = doc.reasons || [];
  UI.chart("reasons", {
    type: "bar",
    data: { labels: reasons.map((r) => `${r.feature} = ${fmt.num(r.value, 2)}`),
      datasets: [{ label: "contribution to the log-odds", data: reasons.map((r) => r.contribution),
        backgroundColor: reasons.map((r) => (r.contribution > 0 ? "#c62828" : "#2e7d32")) }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } } },
  });
  const boxes = document.getElementById("distributions");
  boxes.replaceChildren();
  reasons.forEach((r, i) => {
    const d = r.distribution;
    if (!d || !d.defect || !d.clean) return;
    const id = "dist-" + i;
    boxes.append(el("div", {}, el("p", {}, el("strong", {}, r.feature), ` = ${fmt.num(r.value, 2)}: percentile ${fmt.num(d.defect.percentile, 0)} among defect-inducing, ${fmt.num(d.clean.percentile, 0)} among clean training commits`),
      el("div", { class: "chart small" }, el("canvas", { id }))));
    UI.chart(id, {
      data: { labels: ["defect-inducing", "clean"], datasets: [
        { type: "bar", label: "25th–75th percentile", data: [[d.defect.q25, d.defect.q75], [d.clean.q25, d.clean.q75]], backgroundColor: ["#f3b1b1", "#a9d8ad"] },
        { type: "scatter", label: "median", data: [{ x: d.defect.median, y: "defect-inducing" }, { x: d.clean.median, y: "clean" }], pointStyle: "line", pointRadius: 10, borderColor: "#444" },
        { type: "scatter", label: "this commit", data: [{ x: r.value, y: "defect-inducing" }, { x: r.value, y: "clean" }], pointRadius: 6, backgroundColor: "#1f5fbf" }] },
      options: { indexAxis: "y", scales: { y: { type: "category" } } },
    });
  });
  renderReviews(doc.reviews);
  document.getElementById("review-result").textContent = "";
}

function openCommit(id) {
  return UI.get("/ui/api/commits/" + id).then(renderDetail).catch((e) => UI.fail("detail-meta", e));
}

async function review(verdict) {
  const body = { prediction_id: selected, verdict };
  const reviewer = document.getElementById("reviewer").value.trim();
  if (reviewer) body.reviewer = reviewer;
  const answer = await UI.send("POST", "/v1/reviews", body);
  const result = document.getElementById("review-result");
  result.className = answer.ok ? "" : "error";
  result.textContent = answer.ok ? `Stored: review #${answer.detail.review_id} (${answer.detail.verdict})` : `Not stored (${answer.status}): ${answer.detail}`;
  if (answer.ok) {
    const stored = await UI.get("/v1/reviews?prediction_id=" + selected);
    renderReviews(stored.reviews);
    loadList();
  }
}

document.getElementById("review-right").onclick = () => review("right");
document.getElementById("review-wrong").onclick = () => review("wrong");
form.onsubmit = (event) => { event.preventDefault(); loadList(); };
for (const name of ["repo", "band"]) form.elements[name].onchange = () => loadList();
fillForm();
loadList();
