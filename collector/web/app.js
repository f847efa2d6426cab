// pairwatch's page: the fleet, one pair's state bands, incidents and merged log, and the
// incident history. Plain DOM and SVG, no library, no build step.
//
// Rule for every text that came from the network (log lines, host and pair names, evidence):
// it enters the DOM as a text node or an attribute value, never through innerHTML, so a line
// such as `<img src=x onerror=...>` shows as what it is and runs nothing.
"use strict";

const TOKEN_KEY = "pairwatch-token";
const FLEET_EVERY_MS = 5000;
const PAGE_LINES = 500;
const WINDOWS = { "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400 };
const BAND_H = 18, BAND_GAP = 4, LABEL_W = 190, AXIS_H = 18, INCIDENT_H = 10;
const SVG_NS = "http://www.w3.org/2000/svg";

const main = document.getElementById("main");
const statusLine = document.getElementById("status");
const tokenForm = document.getElementById("token");
let generation = 0; // bumped on each route: work of a view left behind stops
let timer = null;

class AuthNeeded extends Error {}

// --- DOM helpers: text only ---------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function setAttrs(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
}

// --- API ----------------------------------------------------------------------------------

async function api(path, params) {
  const query = params ? "?" + new URLSearchParams(params).toString() : "";
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path + query, { headers });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw new AuthNeeded();
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${body.error || ""}`);
  return body;
}

function askToken() {
  main.replaceChildren();
  tokenForm.hidden = false;
  document.getElementById("token-input").focus();
}

tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("token-input");
  sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = "";
  tokenForm.hidden = true;
  route();
});

// --- times --------------------------------------------------------------------------------

const ms = (iso) => (iso ? Date.parse(iso) : null);
function clock(t) { // 2026-12-04 20:07:19.938 (UTC)
  return new Date(t).toISOString().replace("T", " ").replace("Z", "");
}
function age(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
function stamp(iso, now) { // "for 3m 2s" with the exact time on hover
  if (!iso) return el("span", { class: "muted" }, "-");
  return el("span", { title: clock(ms(iso)) + " UTC" }, age((now - ms(iso)) / 1000));
}

// --- routing ------------------------------------------------------------------------------

function navigate(url) {
  history.pushState(null, "", url);
  route();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href^='/']");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", route);

async function route() {
  generation += 1;
  clearTimeout(timer);
  const mine = generation;
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  try {
    if (path === "/") await fleetView(mine);
    else if (path.startsWith("/pair/")) await pairView(mine, decodeURIComponent(path.slice(6)), params);
    else if (path === "/incidents") await historyView(mine, params);
    else main.replaceChildren(el("p", {}, "Nothing here. ", el("a", { href: "/" }, "Back to the fleet")));
  } catch (error) {
    if (error instanceof AuthNeeded) askToken();
    else if (mine === generation) statusLine.textContent = String(error.message || error);
  }
}

// --- fleet --------------------------------------------------------------------------------

async function fleetView(mine) {
  document.title = "pairwatch: fleet";
  const data = await api("/api/v1/fleet");
  if (mine !== generation) return;
  const now = ms(data.now);
  const table = el("table", { class: "fleet", id: "fleet" },
    el("thead", {}, el("tr", {}, ...["pair / server", "state", "in it for", "view of partner (for)", "last line, ago"].map((h) => el("th", {}, h)))));
  const body = el("tbody");
  for (const pair of data.pairs) {
    const open = Object.entries(pair.conditions).filter(([, on]) => on).map(([name]) => name);
    const link = el("a", { href: pairUrl(pair.name) }, pair.name);
    body.append(el("tr", { class: `pair-head ${pair.class}`, "data-pair": pair.name },
      el("td", { colspan: 2 }, link, " ", el("span", { class: "muted" }, `${pair.implementation}${pair.relationship ? " " + pair.relationship : ""}`)),
      el("td", { colspan: 3 }, ...(open.length ? open.map((c) => el("span", { class: "badge" }, c)) : [el("span", { class: "muted" }, "no open condition")]))));
    for (const s of pair.servers) {
      body.append(el("tr", { class: "server", "data-host": s.host },
        el("td", {}, s.host),
        el("td", {}, el("span", { class: `state ${s.class}`, "data-state": s.state || "" }, s.state || "unknown")),
        el("td", {}, stamp(s.since, now)),
        el("td", {}, el("span", { class: `state ${s.peer_class}` }, s.peer_state || "unknown"), " ", stamp(s.peer_since, now)),
        el("td", {}, stamp(s.last_seen, now))));
    }
  }
  table.append(body);
  const heading = el("h1", {}, `Fleet: ${data.pairs.length} pair${data.pairs.length === 1 ? "" : "s"}`);
  main.replaceChildren(heading, data.pairs.length ? table : el("p", { class: "muted" }, "No pair has logged yet."));
  statusLine.textContent = "updated " + clock(now) + " UTC";
  painted("fleet");
  timer = setTimeout(() => { if (mine === generation) fleetView(mine).catch(handleLater); }, FLEET_EVERY_MS);
}

// The view is in the DOM: say so (tests wait for data-view), and mark when it is in the DOM and
// when the frame after it has been drawn (bench/webpage.py reads both marks).
function painted(view) {
  main.dataset.view = view;
  performance.mark(`pairwatch:${view}`);
  requestAnimationFrame(() => setTimeout(() => performance.mark(`pairwatch:${view}:painted`)));
}

function handleLater(error) {
  if (error instanceof AuthNeeded) askToken();
  else statusLine.textContent = String(error.message || error);
}

function pairUrl(name, windowText = "24h") {
  return `/pair/${encodeURIComponent(name)}?window=${windowText}`;
}

// --- one pair -----------------------------------------------------------------------------

function windowOf(params) {
  const from = ms(params.get("from")), to = ms(params.get("to"));
  if (from !== null && to !== null && !isNaN(from) && !isNaN(to) && from < to) return { since: from, until: to, name: null };
  const name = WINDOWS[params.get("window")] ? params.get("window") : "24h";
  const until = Date.now();
  return { since: until - WINDOWS[name] * 1000, until, name };
}

async function pairView(mine, name, params) {
  document.title = `pairwatch: ${name}`;
  const win = windowOf(params);
  const range = { since: new Date(win.since).toISOString(), until: new Date(win.until).toISOString() };
  const [states, incidents] = await Promise.all([
    api("/api/v1/states", { pair: name, ...range }),
    api("/api/v1/incidents", { all: "1", pair: name }),
  ]);
  if (mine !== generation) return;
  const shown = incidents.incidents.filter((i) => !i.retracted && ms(i.start) < win.until && (i.end === null || ms(i.end) >= win.since));
  const log = new Log(name, range, mine);
  const bands = drawBands(states.states, shown, win, (incident) => log.scrollTo(incident));
  main.replaceChildren(
    el("h1", {}, name, " ", el("a", { href: `/incidents?pair=${encodeURIComponent(name)}`, class: "muted" }, "incident history")),
    windowPicker(name, win),
    bands,
    el("h2", {}, `Incidents (${shown.length})`),
    incidentList(shown, (incident) => log.scrollTo(incident)),
    el("h2", {}, "Log of both servers"),
    log.filters(),
    log.box,
  );
  await log.more();
  if (mine !== generation) return;
  painted("pair");
}

function windowPicker(name, win) {
  const links = Object.keys(WINDOWS).map((w) =>
    el("a", { href: pairUrl(name, w), class: w === win.name ? "current" : null }, w));
  const iso = (t) => new Date(t).toISOString().slice(0, 16);
  const from = el("input", { type: "datetime-local", name: "from", value: iso(win.since) });
  const to = el("input", { type: "datetime-local", name: "to", value: iso(win.until) });
  const form = el("form", {
    onsubmit: (event) => {
      event.preventDefault();
      const q = new URLSearchParams({ from: from.value + "Z", to: to.value + "Z" });
      navigate(`/pair/${encodeURIComponent(name)}?${q}`);
    },
  }, "from ", from, " to ", to, " UTC ", el("button", { type: "submit" }, "show"));
  return el("div", { class: "windows" }, "Window: ", ...links, form);
}

function drawBands(rows, incidents, win, onIncident) {
  const servers = [...new Set(rows.map((r) => r.server))].sort();
  const width = Math.max(600, main.clientWidth - 4);
  const plot = width - LABEL_W - 10;
  const x = (t) => LABEL_W + ((Math.min(Math.max(t, win.since), win.until) - win.since) / (win.until - win.since)) * plot;
  const lanes = servers.flatMap((s) => [[s, "self", s], [s, "peer", `${s}: view of partner`]]);
  const incidentRows = incidents.length ? 1 + Math.min(incidents.length, 4) : 0;
  const height = AXIS_H + lanes.length * (BAND_H + BAND_GAP) + incidentRows * (INCIDENT_H + 2) + 4;
  const root = svg("svg", { class: "bands", id: "bands", width, height, viewBox: `0 0 ${width} ${height}`,
    "data-since": new Date(win.since).toISOString(), "data-until": new Date(win.until).toISOString(),
    "data-plot-left": LABEL_W, "data-plot-width": plot });
  for (let i = 0; i <= 6; i++) { // time axis
    const t = win.since + ((win.until - win.since) * i) / 6;
    root.append(svg("line", { class: "tick", x1: x(t), x2: x(t), y1: AXIS_H - 4, y2: height }),
      svg("text", { x: x(t), y: AXIS_H - 6, "text-anchor": i === 0 ? "start" : i === 6 ? "end" : "middle" }, clock(t).slice(5, 16)));
  }
  lanes.forEach(([server, side, label], n) => {
    const y = AXIS_H + n * (BAND_H + BAND_GAP);
    root.append(svg("text", { x: 4, y: y + BAND_H - 5 }, label));
    const seq = rows.filter((r) => r.server === server && r.side === side);
    seq.forEach((r, k) => {
      const start = ms(r.ts), end = k + 1 < seq.length ? ms(seq[k + 1].ts) : win.until;
      if (end <= win.since) return;
      const x0 = x(start), x1 = x(end);
      root.append(svg("rect", { class: `seg ${r.class}`, x: x0, y, width: Math.max(x1 - x0, 0.5), height: BAND_H,
        "data-server": server, "data-side": side, "data-state": r.state, "data-start": r.ts,
        "data-end": k + 1 < seq.length ? seq[k + 1].ts : null },
        svg("title", {}, `${label}: ${r.state}\nfrom ${clock(start)} UTC\n${k + 1 < seq.length ? "to " + clock(end) + " UTC" : "still at the end of the window"}`)));
    });
  });
  const top = AXIS_H + lanes.length * (BAND_H + BAND_GAP) + 2;
  if (incidentRows) root.append(svg("text", { x: 4, y: top + INCIDENT_H }, "incidents"));
  incidents.forEach((incident, n) => {
    const start = ms(incident.start), end = incident.end ? ms(incident.end) : win.until;
    const y = top + (n % 4) * (INCIDENT_H + 2) + (INCIDENT_H + 2);
    root.append(svg("rect", { class: "incident", x: x(start), y, width: Math.max(x(end) - x(start), 2), height: INCIDENT_H,
      "data-incident": incident.id, "data-start": incident.start, onclick: () => onIncident(incident) },
      svg("title", {}, `${incident.condition} (${incident.servers.join(", ")})\nfrom ${clock(start)} UTC\n${incident.end ? "to " + clock(end) + " UTC" : "still open"}`)));
  });
  return root;
}

function incidentList(incidents, onIncident) {
  const list = el("ul", { class: "incidents", id: "incidents" });
  for (const i of incidents) {
    const times = `${clock(ms(i.start))} to ${i.end ? clock(ms(i.end)) : "now (open)"} UTC`;
    list.append(el("li", { "data-incident": i.id, onclick: () => onIncident(i) },
      el("strong", {}, i.condition), " ", el("span", {}, i.servers.join(", ")), " ", el("span", { class: "time", title: times }, times),
      el("div", { class: "evidence msg" }, ...i.evidence.map((line) => el("div", {}, line)))));
  }
  if (!incidents.length) list.append(el("li", { class: "muted" }, "No incident in this window."));
  return list;
}

class Log {
  constructor(pair, range, mine) {
    this.pair = pair;
    this.range = range;
    this.mine = mine;
    this.after = null;
    this.done = false;
    this.loading = null;
    this.hosts = [];
    this.kinds = new Set();
    this.box = el("div", { class: "log", id: "log" });
    this.end = el("div", { class: "end" }, "loading...");
    this.box.append(this.end);
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && !this.done) this.more().catch(handleLater);
    }, { root: this.box, rootMargin: "200px" }).observe(this.end);
  }

  filters() {
    this.hostSelect = el("select", { name: "host", onchange: () => this.apply() }, el("option", { value: "" }, "every host"));
    this.kindSelect = el("select", { name: "kind", onchange: () => this.apply() }, el("option", { value: "" }, "every kind"));
    this.text = el("input", { type: "search", name: "text", placeholder: "text", oninput: () => this.apply() });
    return el("div", { class: "filters" }, this.hostSelect, this.kindSelect, this.text);
  }

  // one more page (at most one request at a time)
  more() {
    if (this.done) return Promise.resolve();
    if (!this.loading) this.loading = this.load().finally(() => { this.loading = null; });
    return this.loading;
  }

  async load() {
    const params = { pair: this.pair, ...this.range, limit: String(PAGE_LINES) };
    if (this.after) params.after = this.after;
    const page = await api("/api/v1/timeline", params);
    if (this.mine !== generation) return;
    const rows = document.createDocumentFragment();
    for (const m of page.messages) {
      if (!this.hosts.includes(m.host)) {
        this.hosts.push(m.host);
        this.hostSelect.append(el("option", { value: m.host }, m.host));
      }
      if (!this.kinds.has(m.kind)) {
        this.kinds.add(m.kind);
        this.kindSelect.append(el("option", { value: m.kind }, m.kind));
      }
      const change = m.kind === "failover.state" || m.kind === "failover.pair_normal";
      const line = el("div", { class: `line h${this.hosts.indexOf(m.host) % 4}${change ? " change" : ""}`,
        "data-at": m.at, "data-host": m.host || "", "data-kind": m.kind },
        el("span", { class: "time", title: `event time ${m.at}\nreceived ${m.received_at}` }, clock(ms(m.at))),
        el("span", { class: "host" }, m.host || "-"),
        el("span", { class: "kind mono" }, m.kind),
        el("span", { class: "msg" }, m.message));
      this.match(line);
      rows.append(line);
    }
    this.end.before(rows);
    this.after = page.next || null;
    this.done = !page.next;
    this.end.textContent = this.done ? (this.box.children.length > 1 ? "end of the window" : "no line in this window") : "loading...";
    if (!this.done && this.visible() < 40) await this.load(); // a narrow filter: fill the box
  }

  visible() {
    return this.box.querySelectorAll(".line:not([hidden])").length;
  }

  match(line) {
    const host = this.hostSelect.value, kind = this.kindSelect.value, text = this.text.value.toLowerCase();
    line.hidden = (host && line.dataset.host !== host) || (kind && line.dataset.kind !== kind) ||
      (text && !line.textContent.toLowerCase().includes(text));
  }

  apply() {
    for (const line of this.box.querySelectorAll(".line")) this.match(line);
    if (!this.done && this.visible() < 40) this.more().catch(handleLater);
  }

  // Scroll the log to an incident's first evidence line (else its start), loading pages up to it.
  async scrollTo(incident) {
    const start = ms(incident.start);
    const lines = () => [...this.box.querySelectorAll(".line")];
    while (!this.done && !lines().some((l) => ms(l.dataset.at) >= start)) await this.more();
    if (this.mine !== generation) return;
    const evidence = incident.evidence.join("\n");
    const candidates = lines().filter((l) => Math.abs(ms(l.dataset.at) - start) <= 1000);
    const target = candidates.find((l) => evidence.includes(l.querySelector(".msg").textContent.trim())) ||
      lines().find((l) => ms(l.dataset.at) >= start);
    if (!target) return;
    for (const old of this.box.querySelectorAll(".line.target")) old.classList.remove("target");
    target.hidden = false;
    target.classList.add("target");
    this.box.scrollTop = target.offsetTop - this.box.offsetTop - this.box.clientHeight / 3;
    this.box.dataset.scrolledTo = incident.id;
  }
}

// --- incident history ---------------------------------------------------------------------

// The pair's view around an incident: its span, with a margin of a tenth (at least 5 minutes) each side.
function aroundUrl(incident) {
  const start = ms(incident.start), end = ms(incident.end);
  const margin = Math.max((end - start) / 10, 5 * 60 * 1000);
  const q = new URLSearchParams({ from: new Date(start - margin).toISOString(), to: new Date(end + margin).toISOString() });
  return `/pair/${encodeURIComponent(incident.pair)}?${q}`;
}

async function historyView(mine, params) {
  const pair = params.get("pair");
  document.title = `pairwatch: incident history${pair ? " of " + pair : ""}`;
  const data = await api("/api/v1/history", pair ? { pair } : {});
  if (mine !== generation) return;
  const table = el("table", { class: "history", id: "history" },
    el("thead", {}, el("tr", {}, ...["pair", "condition", "servers", "start (UTC)", "duration", "diagnosis"].map((h) => el("th", {}, h)))));
  const body = el("tbody");
  for (const i of data.incidents) {
    body.append(el("tr", { "data-incident": i.id },
      el("td", {}, el("a", { href: aroundUrl(i) }, i.pair)),
      el("td", {}, i.condition), el("td", {}, i.servers.join(", ")),
      el("td", { class: "time", title: `${i.start} to ${i.end}` }, clock(ms(i.start))),
      el("td", { title: `${i.duration_seconds} s` }, i.duration), el("td", {}, i.diagnosis)));
  }
  table.append(body);
  main.replaceChildren(el("h1", {}, `Incident history${pair ? ": " + pair : " of the fleet"}`),
    data.incidents.length ? table : el("p", { class: "muted" }, "No closed incident."));
  painted("history");
}

route();
