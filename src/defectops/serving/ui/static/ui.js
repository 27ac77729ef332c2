// Shared helpers of the defectops pages: fetching documents (with the read token when one is needed),
// building elements, formatting, and making charts with the vendored Chart.js.
"use strict";
const UI = (() => {
  const TOKEN = "defectops.read";
  const token = () => sessionStorage.getItem(TOKEN) || "";

  function askToken(message) {
    const box = document.getElementById("auth");
    if (!box) return;
    box.style.display = "block";
    box.querySelector(".reason").textContent = message;
    box.querySelector("form").onsubmit = (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN, box.querySelector("input").value.trim());
      location.reload();
    };
  }

  async function reason(response) {
    try {
      const body = await response.json();
      return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch (error) {
      return response.statusText;
    }
  }

  async function get(url) {
    const headers = {};
    if (token()) headers.Authorization = "Bearer " + token();
    const response = await fetch(url, { headers });
    if (response.status === 401 || response.status === 403) {
      askToken(await reason(response));
      throw new Error("the read token is needed");
    }
    if (!response.ok) throw new Error(response.status + ": " + (await reason(response)));
    return response.json();
  }

  // An API call with a body; ``bearer`` is the admin token for admin actions, else the read token.
  async function send(method, url, body, bearer) {
    const headers = { "Content-Type": "application/json" };
    const key = bearer !== undefined ? bearer : token();
    if (key) headers.Authorization = "Bearer " + key;
    const response = await fetch(url, { method, headers, body: JSON.stringify(body) });
    const detail = response.ok ? await response.json() : await reason(response);
    return { ok: response.ok, status: response.status, detail };
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function table(headers, rows) {
    return el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)));
  }

  const fmt = {
    num: (v, d = 3) => (v === null || v === undefined ? "–" : Number(v).toFixed(d)),
    pct: (v, d = 1) => (v === null || v === undefined ? "–" : (100 * v).toFixed(d) + " %"),
    time: (v) => (v ? new Date(v).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "–"),
    day: (v) => (v ? new Date(v).toISOString().slice(0, 10) : "–"),
    sha: (v) => (v ? v.slice(0, 10) : "–"),
  };

  const band = (name) => el("span", { class: "band " + name }, name);
  const chip = (text, kind) => el("span", { class: "chip " + (kind || text) }, text);

  const charts = {};
  function chart(id, config) {
    if (charts[id]) charts[id].destroy();
    const canvas = document.getElementById(id);
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    charts[id] = new Chart(canvas, config);
    return charts[id];
  }

  function fail(where, error) {
    const node = document.getElementById(where);
    if (node) node.replaceChildren(el("p", { class: "error" }, String(error.message || error)));
  }

  // Mark the current page in the navigation.
  document.addEventListener("DOMContentLoaded", () => {
    for (const link of document.querySelectorAll("header nav a")) {
      if (link.getAttribute("href") === location.pathname) link.setAttribute("aria-current", "page");
    }
  });

  return { get, send, el, table, fmt, band, chip, chart, fail, token };
})();
