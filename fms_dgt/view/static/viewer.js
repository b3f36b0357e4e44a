// The viewer's only script: live counts on the overview and task pages, and charts.
// Text from the server is set with textContent, never as markup.
"use strict";

function liveRefresh(table) {
  const url = table.dataset.live;
  const only = table.dataset.task;
  async function tick() {
    try {
      const resp = await fetch(url, { credentials: "same-origin" });
      if (!resp.ok) return;
      const doc = await resp.json();
      for (const t of doc.tasks) {
        if (only !== undefined && t.name !== only) continue;
        const row = only !== undefined ? table : table.querySelector(`tr[data-task="${CSS.escape(t.name)}"]`);
        if (!row) { if (only === undefined) location.reload(); continue; }
        const set = (sel, text) => { const el = row.querySelector(sel); if (el) setText(el, text); };
        set('[data-field="status"]', t.status);
        set('[data-field="rate"]', t.rate == null ? "–" : t.rate.toFixed(2));
        if (t.tokens && t.tokens.total !== undefined) set('[data-field="tokens"]', String(t.tokens.total));
        const bar = row.querySelector('[data-field="progress"] progress');
        if (bar && t.progress != null) bar.value = t.progress;
        const pct = row.querySelector('[data-field="progress"] .pct');
        if (pct && t.target) pct.textContent = `${t.counts.data || 0} / ${t.target}`;
        for (const [store, n] of Object.entries(t.counts)) set(`[data-count="${store}"]`, String(n));
      }
    } catch (e) { /* the server may be gone; try again */ }
  }
  setInterval(tick, 2000);
}

function setText(el, text) {
  const link = el.querySelector("a");
  (link || el).textContent = text;
}

function drawCharts() {
  if (typeof Plotly === "undefined") return;
  for (const div of document.querySelectorAll("div.plot[data-figure]")) {
    const fig = JSON.parse(document.getElementById(div.dataset.figure).textContent);
    Plotly.newPlot(div, fig.data || [], fig.layout || {}, { displaylogo: false, responsive: true });
  }
}

window.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(liveRefresh);
  drawCharts();
});
