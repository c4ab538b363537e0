// The admins' pages: a file dropped on the upload area, and an import's live progress.
// Text goes in with textContent only: nothing from the server is parsed as HTML.
"use strict";

const REFRESH_MS = 1500;

function setUpDrop() {
  const drop = document.getElementById("drop");
  const input = document.getElementById("file");
  const chosen = document.getElementById("chosen");
  if (!drop || !input) return;
  const show = () => { if (input.files.length) chosen.textContent = `Chosen: ${input.files[0].name}`; };
  input.addEventListener("change", show);
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    if (!event.dataTransfer.files.length) return;
    input.files = event.dataTransfer.files;
    show();
    input.form.requestSubmit();
  });
}

function number(n) { return Number(n).toLocaleString("en-US"); }

function duration(seconds) {
  const s = Math.floor(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  if (h) return `${h} h ${m} m`;
  return m ? `${m} m ${s % 60} s` : `${s % 60} s`;
}

// Rows per second between refreshes, smoothed (the server's is the average since the start).
let previous = null;

function liveRate(p) {
  const now = performance.now() / 1000;
  let rate = p.rate;
  if (previous && now > previous.t) {
    const instant = (p.settled - previous.settled) / (now - previous.t);
    rate = previous.rate === null ? instant : 0.5 * previous.rate + 0.5 * instant;
  }
  previous = { settled: p.settled, t: now, rate };
  return rate;
}

function setField(root, name, text) {
  const node = root.querySelector(`[data-field="${name}"]`);
  if (node) node.textContent = text;
}

async function refresh(section) {
  const response = await fetch(section.dataset.refresh, { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const imp = await response.json();
  if (imp.state !== section.dataset.state) {
    // A new state brings new actions and a summary: the server draws them.
    window.location.reload();
    return;
  }
  const p = imp.progress;
  const bar = section.querySelector("[role=progressbar]");
  bar.setAttribute("aria-valuemax", p.valid);
  bar.setAttribute("aria-valuenow", p.settled);
  bar.querySelector(".fill").style.width = `${p.percent}%`;
  const rate = liveRate(p);
  setField(section, "rows", `${number(p.settled)} of ${number(p.valid)} people`);
  setField(section, "rate", rate === null ? "starting" : `${number(Math.round(rate))} people/s`);
  setField(section, "eta", rate > 0 ? `about ${duration(p.pending / rate)} left` : "");
  for (const name of ["created", "updated", "unchanged", "skipped"]) {
    const node = document.querySelector(`#summary [data-count="${name}"] strong`);
    if (node) node.textContent = number(imp.rows[name]);
  }
}

function watchImport() {
  const section = document.getElementById("import");
  if (!section || !section.dataset.refresh) return;
  const ended = ["done", "failed", "cancelled", "blocked"];
  if (ended.includes(section.dataset.state)) return;
  const tick = async () => {
    try { await refresh(section); } catch (error) { /* the next tick tries again */ }
    setTimeout(tick, REFRESH_MS);
  };
  setTimeout(tick, REFRESH_MS);
}

// The settings' date and time only matter with "send at"; the review's options apply on change.
function setUpSettings() {
  const when = document.getElementById("send_at");
  if (when) {
    const sync = () => {
      const at = document.querySelector('input[name=invites][value=at]');
      when.required = at && at.checked;
    };
    for (const radio of document.querySelectorAll("input[name=invites]")) radio.addEventListener("change", sync);
    sync();
  }
}

// The review's options apply as soon as one is chosen (the button stays for keyboards without scripts).
function setUpPreviewOptions() {
  const form = document.querySelector("form.options");
  if (!form) return;
  for (const radio of form.querySelectorAll("input[type=radio]")) {
    radio.addEventListener("change", () => form.requestSubmit());
  }
}

// A large file takes a while to upload, review or record: say so on the button pressed.
function setUpBusyButtons() {
  for (const form of document.querySelectorAll("form[data-busy]")) {
    form.addEventListener("submit", () => {
      const button = form.querySelector("button[type=submit]");
      if (!button) return;
      button.textContent = form.dataset.busy;
      setTimeout(() => { button.disabled = true; }, 0);  // after the browser has taken the form
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setUpDrop();
  watchImport();
  setUpSettings();
  setUpBusyButtons();
  setUpPreviewOptions();
});
