// City status page: reads only the IOC API (no tiles, no CDN). The key comes from #key=… once, then localStorage.
"use strict";

const COLOURS = { online: "#2e9e44", offline: "#d32f2f", silent: "#f0a020", decommissioned: "#999999" };
const REFRESH_MS = 30000;
const params = new URLSearchParams(location.search);
let key = null;

function takeKey() {
  const m = location.hash.match(/key=([^&]+)/);
  if (m) {
    localStorage.setItem("ioc-api-key", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return localStorage.getItem("ioc-api-key");
}

function showError(text) {
  const el = document.getElementById("error");
  el.textContent = text;
  el.hidden = !text;
}

async function api(path) {
  const r = await fetch(path, { headers: { "X-API-Key": key } });
  if (r.status === 401) {
    localStorage.removeItem("ioc-api-key");
    document.getElementById("login").hidden = false;
    throw new Error("the API key was refused: enter a valid one");
  }
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(`${path}: ${r.status} ${detail}`);
  }
  return r.json();
}

function fillTable(id, rows, cells) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.group = row.group;
    for (const [name, value] of cells(row)) {
      const td = document.createElement("td");
      td.className = name;
      td.textContent = value;
      tr.appendChild(td);
    }
    return tr;
  }));
}

function statusCells(row) {
  return [["group", row.group || "—"], ["total", row.total], ["online", row.online], ["offline", row.offline],
          ["silent", row.silent]];
}

function draw(map, devices) {
  const canvas = document.getElementById("map");
  const ctx = canvas.getContext("2d");
  const pts = [];
  for (const f of map.features) {
    const g = f.geometry;
    (g.type === "Point" ? [g.coordinates] : g.coordinates).forEach((c) => pts.push(c));
  }
  for (const d of devices) if (d.lon !== null && d.lat !== null) pts.push([d.lon, d.lat]);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;  // no spread: a city has 40 000 points
  for (const [lon, lat] of pts) {
    x0 = Math.min(x0, lon); x1 = Math.max(x1, lon); y0 = Math.min(y0, lat); y1 = Math.max(y1, lat);
  }
  const k = Math.cos((map.centre[0] * Math.PI) / 180);  // equirectangular: a degree of longitude is shorter
  const pad = 20;
  const scale = Math.min((canvas.width - 2 * pad) / ((x1 - x0) * k || 1), (canvas.height - 2 * pad) / ((y1 - y0) || 1));
  const xy = (lon, lat) => [pad + (lon - x0) * k * scale, canvas.height - pad - (lat - y0) * scale];
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  for (const f of map.features) {
    const p = f.properties, g = f.geometry;
    if (g.type === "LineString") {
      ctx.beginPath();
      g.coordinates.forEach((c, i) => (i ? ctx.lineTo(...xy(c[0], c[1])) : ctx.moveTo(...xy(c[0], c[1]))));
      ctx.strokeStyle = p.layer === "river" ? "#6fa8dc" : "#bbbbbb";
      ctx.lineWidth = p.layer === "river" ? 4 : p.class === "main" ? 3 : 1.5;
      ctx.stroke();
    } else if (p.layer === "ward") {
      ctx.fillStyle = "#555";
      ctx.font = "bold 13px system-ui";
      ctx.fillText(p.name, ...xy(g.coordinates[0], g.coordinates[1]));
    }
  }
  let drawn = 0;
  // Healthy devices first, so the offline and silent ones are drawn on top where they overlap.
  const order = { online: 0, decommissioned: 1, silent: 2, offline: 3 };
  const sorted = devices.filter((d) => d.lon !== null && d.lat !== null)
    .sort((a, b) => order[a.state] - order[b.state]);
  for (const d of sorted) {
    const [x, y] = xy(d.lon, d.lat);
    ctx.fillStyle = COLOURS[d.state] || "#000";
    ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
    drawn += 1;
  }
  canvas.dataset.devices = String(drawn);
  const counts = {};
  for (const d of devices) counts[d.state] = (counts[d.state] || 0) + 1;
  canvas.dataset.states = JSON.stringify(counts);
}

function legend() {
  document.getElementById("legend").replaceChildren(...Object.entries(COLOURS).map(([state, colour]) => {
    const li = document.createElement("li");
    const dot = document.createElement("i");
    dot.style.background = colour;
    li.append(dot, state);
    return li;
  }));
}

async function refresh() {
  const cities = await api("/v1/cities");
  const city = params.get("city") || (cities[0] && cities[0].city);
  const q = `city=${encodeURIComponent(city)}`;
  const [map, devices, byFamily, byWard, bySite] = await Promise.all([
    api(`/v1/cities/${encodeURIComponent(city)}/map`), api(`/v1/latest?${q}&reading=false`),
    api(`/v1/kpis/status?${q}&group_by=family`), api(`/v1/kpis/status?${q}&group_by=ward`),
    api(`/v1/kpis/status?${q}&group_by=site`),
  ]);
  document.getElementById("title").textContent = `${map.name} — city status`;
  draw(map, devices);
  fillTable("by-family", byFamily, statusCells);
  fillTable("by-ward", byWard, statusCells);
  const dark = bySite.filter((r) => r.offline + r.silent > 0)
    .sort((a, b) => (b.offline + b.silent) / b.total - (a.offline + a.silent) / a.total || b.total - a.total)
    .slice(0, 15);
  fillTable("offline-areas", dark, (r) => [["group", r.group || "—"], ["down", r.offline + r.silent], ["total", r.total]]);
  const totals = byFamily.reduce((t, r) => {
    for (const k of ["total", "online", "offline", "silent"]) t[k] += r[k];
    return t;
  }, { total: 0, online: 0, offline: 0, silent: 0 });
  document.getElementById("totals").replaceChildren(...Object.entries(totals).map(([k, v]) => {
    const s = document.createElement("span");
    s.className = k;
    s.id = `total-${k}`;
    s.textContent = `${k}: ${v}`;
    return s;
  }));
  document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.loaded = "true";
  showError("");
}

async function loop() {
  try {
    await refresh();
  } catch (e) {
    showError(e.message);
  }
  setTimeout(loop, REFRESH_MS);
}

document.getElementById("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  localStorage.setItem("ioc-api-key", document.getElementById("key").value.trim());
  key = takeKey();
  document.getElementById("login").hidden = true;
  loop();
});

// Anything uncaught is recorded on the page too (the browser test reads it next to the console).
window.addEventListener("error", (e) => { document.body.dataset.errors = String(e.message); });
window.addEventListener("unhandledrejection", (e) => { document.body.dataset.errors = String(e.reason); });
legend();
key = takeKey();
if (key) loop(); else document.getElementById("login").hidden = false;
