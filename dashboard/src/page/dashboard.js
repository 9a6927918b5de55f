// Reads `pools` (relative to this page, so the dashboard can be mounted anywhere) every two
// seconds and shows each pool: its counts, a chart of their last minutes, wait times, close
// reasons, health and current leaks. Text goes in through textContent only: pool names and
// checkout sites are data, never markup.
"use strict";

const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
const cards = [];
const SERIES = [
  ["size", "#5b6478"],
  ["idle", "#2e9e4f"],
  ["in use", "#2f6fd6"],
  ["waiting", "#d6492f"],
];
const FIGURES = [
  ["size", (s) => s.status.size],
  ["idle", (s) => s.status.idle],
  ["in_use", (s) => s.status.in_use],
  ["waiting", (s) => s.status.waiting],
  ["connecting", (s) => s.status.connecting],
  ["max_size", (s) => s.status.max_size],
];

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function ms(seconds) {
  return seconds < 0.001 ? (seconds * 1e6).toFixed(0) + " µs" : (seconds * 1e3).toFixed(1) + " ms";
}

function table(caption, rows, empty) {
  const t = el("table");
  t.appendChild(el("caption", {}, caption));
  if (rows.length === 0) {
    const tr = t.insertRow();
    tr.appendChild(el("td", { class: "none" }, empty));
  }
  for (const row of rows) {
    const tr = t.insertRow();
    row.forEach((cell, i) => tr.appendChild(el("td", i > 0 ? { class: "n" } : {}, String(cell))));
  }
  return t;
}

function card(i) {
  const section = el("section", { class: "pool", id: "pool-" + i });
  const title = el("h2");
  title.append(el("span", { id: `pool-${i}-name` }), el("span", { class: "badge", id: `pool-${i}-role` }),
    el("span", { class: "badge", id: `pool-${i}-health` }), el("span", { class: "badge", id: `pool-${i}-rotation` }));
  const figures = el("div", { class: "figures" });
  for (const [key] of FIGURES) {
    const f = el("div");
    f.append(el("b", { id: `pool-${i}-${key}` }), el("span", {}, key.replace("_", " ")));
    figures.appendChild(f);
  }
  const chart = el("div", { class: "chart", id: `pool-${i}-chart` });
  const tables = el("div", { class: "tables", id: `pool-${i}-tables` });
  section.append(title, figures, chart, tables);
  document.getElementById("pools").appendChild(section);
  const plot = new uPlot({
    width: 580,
    height: 200,
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    series: [{}].concat(SERIES.map(([label, stroke]) => ({ label, stroke, width: 2 }))),
    axes: [{}, { label: "connections" }],
  }, [[], [], [], [], []], chart);
  return { section, chart, tables, plot };
}

function show(i, pool) {
  const c = cards[i] || (cards[i] = card(i));
  const s = pool.snapshot;
  const set = (id, text) => { document.getElementById(`pool-${i}-${id}`).textContent = text; };
  set("name", s.name);
  set("role", pool.role || "pool");
  set("health", s.health);
  document.getElementById(`pool-${i}-health`).className = "badge " + s.health;
  const rotation = document.getElementById(`pool-${i}-rotation`);
  rotation.hidden = pool.in_rotation === null;
  rotation.textContent = pool.in_rotation ? "in rotation" : "out of rotation";
  rotation.className = "badge " + (pool.in_rotation ? "healthy" : "out");
  for (const [key, read] of FIGURES) set(key, read(s));

  // The chart's columns: time (s), then one per series.
  const h = pool.history;
  const data = [h.map((p) => p[0] / 1000)].concat(SERIES.map((_, k) => h.map((p) => p[k + 1])));
  c.plot.setData(data);
  const last = h[h.length - 1] || [0, 0, 0, 0, 0];
  c.chart.dataset.latestSize = last[1];
  c.chart.dataset.latestIdle = last[2];
  c.chart.dataset.latestInUse = last[3];
  c.chart.dataset.latestWaiting = last[4];

  const st = s.stats;
  const w = st.wait_time;
  const closes = Object.entries(st.closes).filter(([, n]) => n > 0);
  c.tables.replaceChildren(
    table("Wait time", [["p50", ms(w.p50_seconds)], ["p95", ms(w.p95_seconds)], ["p99", ms(w.p99_seconds)],
      ["max", ms(w.max_seconds)], ["acquires", w.count]], ""),
    table("Outcomes", [["timed out", st.acquires_timed_out], ["rejected", st.acquires_rejected],
      ["cancelled", st.acquires_cancelled], ["connects failed", st.connects_failed],
      ["utilisation", (st.utilisation * 100).toFixed(1) + " %"], ["reuse rate", st.reuse_rate.toFixed(1)]], ""),
    table("Close reasons", closes.map(([reason, n]) => [reason.replace("_", " "), n]), "none yet"),
    table("Leaks", s.leaks.map((l) => [l.checked_out_at, l.held_seconds.toFixed(1) + " s"]), "none"),
  );
  c.tables.lastChild.id = `pool-${i}-leaks`;
}

async function refresh() {
  const updated = document.getElementById("updated");
  try {
    const response = await fetch(base + "pools", { cache: "no-store" });
    if (!response.ok) throw new Error(response.status + " " + (await response.text()));
    const { pools } = await response.json();
    pools.forEach((pool, i) => show(i, pool));
    updated.textContent = "updated " + new Date().toLocaleTimeString();
    updated.className = "";
  } catch (e) {
    updated.textContent = "could not read the pools: " + e.message;
    updated.className = "failed";
  }
}

refresh();
setInterval(refresh, 2000);
