// Refreshes the dashboard's figures every 2 seconds from its JSON routes.
// Text goes in with textContent only: nothing from the server is parsed as HTML.
"use strict";

const REFRESH_MS = 2000;
const COUNTS = ["created", "updated", "unchanged", "skipped", "failed"];

function number(n) { return Number(n).toLocaleString("en-US"); }

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.floor(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  if (h) return `${h} h ${m} m`;
  return m ? `${m} m ${s % 60} s` : `${s % 60} s`;
}

// Rows settled per second between refreshes, smoothed; the server's figure is
// the average since the import started, which a pause (workers down) skews.
const samples = new Map();

function liveFigures(key, p, state) {
  const now = performance.now() / 1000;
  const previous = samples.get(key);
  let live = null;
  if (previous && state === "running" && now > previous.t) {
    const instant = (p.settled - previous.settled) / (now - previous.t);
    live = previous.rate === null ? instant : 0.5 * previous.rate + 0.5 * instant;
  }
  samples.set(key, { settled: p.settled, t: now, rate: live });
  if (live === null) return { rate: p.rate, eta: p.eta_seconds };
  return { rate: live, eta: live > 0 ? p.pending / live : null };
}

function rate(r) { return r === null || r === undefined ? "–" : `${Math.round(r)}/s`; }

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

function setBar(bar, p, state) {
  bar.className = `bar state-${state}`;
  bar.setAttribute("aria-valuemax", p.valid);
  bar.setAttribute("aria-valuenow", p.settled);
  bar.querySelector(".fill").style.width = `${p.percent}%`;
}

function field(root, name, text) {
  const node = root.querySelector(`[data-field="${name}"]`);
  if (node) node.textContent = text;
}

function importRow(i) {
  const tr = el("tr", { "data-import": i.id });
  const link = el("a", { href: `/imports/${i.id}` }, String(i.id));
  tr.append(el("td"), el("td", {}, i.tenant), el("td", {}, i.mode));
  tr.firstChild.append(link);
  const state = el("td");
  state.append(el("span", { class: `state state-${i.state}`, "data-field": "state" }, i.state));
  if (i.stalled_since) {
    state.append(" ", el("span", { class: "state state-stalled", title: `no progress since ${i.stalled_since}` }, "stalled"));
  }
  const bar = el("div", { class: "bar", role: "progressbar", "aria-label": "rows settled", "aria-valuemin": 0 });
  bar.append(el("div", { class: "fill" }));
  setBar(bar, i, i.state);
  const progress = el("td", { class: "wide" });
  progress.append(bar);
  const counts = COUNTS.map((c) => i.counts[c]).concat([i.invalid]).map(number).join(" · ");
  const live = liveFigures(i.id, i, i.state);
  tr.append(
    state, progress,
    el("td", { class: "num", "data-field": "rows" }, `${number(i.settled)} / ${number(i.valid)}`),
    el("td", { class: "num", "data-field": "rate" }, rate(live.rate)),
    el("td", { class: "num", "data-field": "eta" }, duration(live.eta)),
    el("td", { class: "num", "data-field": "counts" }, counts),
  );
  return tr;
}

function renderOverview(data) {
  for (const q of data.queues) {
    const row = document.querySelector(`tr[data-queue="${q.name}"]`);
    if (!row) continue;
    for (const name of ["ready", "in_progress", "delayed", "dead"]) field(row, name, number(q[name]));
    row.querySelector('[data-field="dead"]').className = q.dead ? "alert" : "";
    row.querySelector("[data-needs-dead]").disabled = q.dead === 0;
  }
  document.getElementById("broker-count").textContent = data.brokers.length;
  const brokers = document.getElementById("brokers");
  brokers.replaceChildren(...data.brokers.map((b) => {
    const li = el("li");
    li.append(el("code", {}, b.id.slice(0, 8)), ` ${b.seconds_ago.toFixed(1)} s ago`);
    return li;
  }));
  const body = document.querySelector("#imports tbody");
  if (data.imports.length) body.replaceChildren(...data.imports.map(importRow));
}

function renderImport(root, imp) {
  if (imp.state !== root.dataset.state) {
    // The actions that apply have changed: show the page as the server renders it now.
    window.location.reload();
    return;
  }
  const p = imp.progress;
  const live = liveFigures(imp.id, p, imp.state);
  setBar(root.querySelector(".bar"), p, imp.state);
  field(root, "rows", `${number(p.settled)} / ${number(p.valid)} rows`);
  root.querySelector('[data-field="rows"]').append(
    " · ", el("span", { "data-field": "rate" }, rate(live.rate)),
    " · ETA ", el("span", { "data-field": "eta" }, duration(live.eta)),
  );
  for (const [name, value] of Object.entries(imp.rows)) {
    const cell = root.querySelector(`[data-count="${name}"]`);
    if (cell) cell.textContent = number(value);
  }
  for (const [name, value] of Object.entries(imp.invites)) {
    const cell = root.querySelector(`[data-invites="${name}"]`);
    if (cell) cell.textContent = value;
  }
}

function start() {
  const root = document.querySelector("[data-refresh]");
  if (!root) return;
  const render = root.id === "overview" ? renderOverview : (data) => renderImport(root, data);
  const tick = async () => {
    try {
      const response = await fetch(root.dataset.refresh, { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401) { window.location.assign("/login"); return; }
      if (response.ok) render(await response.json());
    } catch (error) {
      // A missed refresh (server restarting): try again at the next tick.
    }
    window.setTimeout(tick, REFRESH_MS);
  };
  window.setTimeout(tick, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", start);
