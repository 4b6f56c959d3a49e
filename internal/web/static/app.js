// The operator dashboard: polls /admin/v1/overview with the admin token the
// operator typed (kept in sessionStorage only) and renders it. No content of
// any request ever reaches this page: the API carries figures only.
// The token may also come in the URL fragment (/dashboard/#token=...), which
// browsers never send to a server; it is moved to sessionStorage and removed
// from the address bar at once.
"use strict";

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
let currency = "USD";

function money(micros) {
  // Up to six decimals: single requests cost micro-units, and $0.00 would hide them.
  return (micros / 1e6).toLocaleString("en-US", { style: "currency", currency, maximumFractionDigits: 6 });
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fillTable(id, rows, cells) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren(...rows.map((r) => {
    const tr = el("tr");
    for (const c of cells(r)) tr.append(c instanceof Node ? wrapTd(c) : el("td", c));
    return tr;
  }));
}

function wrapTd(node) { const td = el("td"); td.append(node); return td; }

function render(o) {
  currency = (o.ledger && o.ledger.currency) || currency;
  const hosts = o.hosts || [];
  const t = o.traffic || {};
  $("c-hosts").textContent = `${hosts.filter((h) => h.connected).length} / ${hosts.length}`;
  $("c-inflight").textContent = fmt.format(t.requests_in_flight || 0);
  $("c-tps").textContent = fmt.format(t.tokens_per_sec || 0);
  $("c-ttft").textContent = `${fmt.format(t.ttft_p50_ms || 0)} / ${fmt.format(t.ttft_p99_ms || 0)} ms`;
  $("c-failovers").textContent = `${t.failovers_total || 0} / ${t.hedges_total || 0}`;
  $("c-fallback").textContent = `${fmt.format(100 * (t.fallback_token_share || 0))}%`;

  const byRegion = new Map();
  for (const h of hosts) {
    const r = h.region || "default";
    if (!byRegion.has(r)) byRegion.set(r, []);
    byRegion.get(r).push(h);
  }
  const regions = $("regions");
  regions.replaceChildren();
  for (const [region, hs] of [...byRegion.entries()].sort()) {
    regions.append(el("h3", `${region} — ${hs.filter((h) => h.connected).length} online`));
    const table = el("table");
    table.className = "hosts";
    const head = el("tr");
    for (const c of ["Host", "Owner", "Tier", "Status", "Models", "Load", "Tokens/s", "TTFT ms", "ms/token", "Strikes"]) head.append(el("th", c));
    const thead = el("thead"); thead.append(head);
    const tbody = el("tbody");
    for (const h of hs) {
      const tr = el("tr");
      const status = el("span", h.connected ? (h.status || "online") : "offline", h.connected ? (h.status === "active" || !h.status ? "ok" : "warn") : "bad");
      const name = el("span", h.name || h.id);
      if (h.fallback) { name.append(" "); name.append(el("span", "fallback", "pill")); }
      for (const c of [name, h.owner || "", h.tier || "standard", status, (h.models || []).join(", "),
        `${h.in_flight || 0}/${h.capacity || 0}`, fmt.format(h.tokens_per_sec || 0), fmt.format(h.ttft_ms || 0),
        fmt.format(h.ms_per_token || 0), String(h.strikes || 0)]) {
        tr.append(c instanceof Node ? wrapTd(c) : el("td", c));
      }
      tbody.append(tr);
    }
    table.append(thead, tbody);
    regions.append(table);
  }

  fillTable("seats", o.seats || [], (s) => [s.region, s.seats, s.active, s.waiting, fmt.format(s.peak_streams || 0)]);
  const l = o.ledger || {};
  $("l-revenue").textContent = money(l.revenue_micros || 0);
  $("l-hosts").textContent = money(l.hosts_micros || 0);
  $("l-platform").textContent = money(l.platform_micros || 0);
  $("l-requests").textContent = fmt.format(l.requests || 0);
  const p = o.payouts || {};
  $("p-period").textContent = p.period ? `(${p.period})` : "";
  fillTable("payouts", p.hosts || [], (h) => [h.host_id, money(h.earned_micros), fmt.format(h.tokens), fmt.format(h.requests)]);
  fillTable("federation", o.federation || [], (f) => [f.region, money(f.revenue_micros), `${f.active_hosts} / ${f.active_hosts_threshold}`,
    el("span", f.ready ? "ready" : `${fmt.format(100 * Math.min(f.revenue_progress, f.hosts_progress))}%`, f.ready ? "ok" : "muted")]);
}

function tokenFromFragment() {
  const m = /(?:^|&)token=([^&]*)/.exec(location.hash.slice(1));
  if (!m) return;
  sessionStorage.setItem("peerllm-admin-token", decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + location.search);
}

async function poll() {
  const token = sessionStorage.getItem("peerllm-admin-token");
  if (!token) { $("status").textContent = "enter the admin token"; return; }
  try {
    const res = await fetch("/admin/v1/overview", { headers: { Authorization: `Bearer ${token}` } });
    if (res.status === 401) { $("status").textContent = "admin token refused"; return; }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    render(await res.json());
    $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = "true";
  } catch (e) {
    $("status").textContent = `orchestrator unreachable (${e.message})`;
  }
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("peerllm-admin-token", $("token").value);
  $("token").value = "";
  poll();
});

tokenFromFragment();
poll();
setInterval(poll, 2000);
