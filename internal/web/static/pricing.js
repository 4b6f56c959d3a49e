// The public pricing page: renders GET /v1/pricing.
"use strict";

function el(tag, text) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); return e; }

async function load() {
  const box = document.getElementById("versions");
  try {
    const res = await fetch("/v1/pricing");
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const pl = await res.json();
    const money = (m) => (m / 1e6).toLocaleString("en-US", { style: "currency", currency: pl.currency, maximumFractionDigits: 6 });
    box.replaceChildren();
    for (const v of [...pl.versions].reverse()) {
      const inForce = v.version === pl.in_force;
      const h = el("h2", `Version ${v.version}${inForce ? " — in force" : ""}`);
      const when = el("p", `Effective ${new Date(v.effective).toUTCString()}${v.published ? `, published ${new Date(v.published).toUTCString()}` : ""}`);
      when.className = "muted";
      const table = el("table");
      const head = el("tr");
      for (const c of ["Model", "Input / 1M tokens", "Output / 1M tokens"]) head.append(el("th", c));
      const thead = el("thead"); thead.append(head);
      const tbody = el("tbody");
      for (const name of Object.keys(v.models).sort()) {
        const tr = el("tr");
        const p = v.models[name];
        tr.append(el("td", name === "*" ? "every other model" : name), el("td", money(p.input_per_million)), el("td", money(p.output_per_million)));
        tbody.append(tr);
      }
      table.append(thead, tbody);
      box.append(h, when, table);
    }
    document.body.dataset.loaded = "true";
  } catch (e) {
    box.textContent = `Price list unavailable (${e.message}).`;
  }
}
load();
