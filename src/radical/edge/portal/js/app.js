// The shell: connection status, the live tree, the hash router and the page lifecycle.
//   #/                  bridge overview
//   #/e/EDGE            one edge
//   #/e/EDGE/PLUGIN     a plugin page (its own module, or the generic ui_config renderer)
import { h, replace, clear } from './dom.js';
import { PluginApi, askToken, post, redeemLoginLink } from './api.js';
import { EventStream } from './sse.js';
import { renderTree, tickWalltimes } from './tree.js';
import { overviewPage, edgePage } from './pages.js';
import { toast, loading, errorBox } from './ui.js';

// Bundled page modules, by plugin type (or by a plugin's `ui_module` naming one of them).
// Modules are never loaded from plugin-provided URLs.
const MODULES = {
  sysinfo: () => import('./sysinfo.js'),
  queue_info: () => import('./queue_info.js'),
  psij: () => import('./psij.js'),
  rhapsody: () => import('./rhapsody.js'),
  staging: () => import('./staging.js'),
  lucid: () => import('./lucid.js'),
  xgfabric: () => import('./xgfabric.js'),
};
const generic = () => import('./generic.js');
// Views that are not a plugin's page, by the first segment of their route (#/work).
const VIEWS = {
  work: () => import('./mywork.js'),
};

const state = {
  topology: null,
  connected: false,
  route: { edge: null, plugin: null },
  page: null,     // {key, disposers: [], el}
};

const events = new EventStream();
window.radicalEdge = { events, state };  // for debugging and the browser tests

const $ = (id) => document.getElementById(id);

function parseRoute() {
  // `#/e/EDGE/PLUGIN?k=v`: the query is the page's own (e.g. the staging page's start path)
  const [where, search] = location.hash.replace(/^#\/?/, '').split('?', 2);
  const parts = where.split('/').filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch (e) { return p; }
  });
  const query = Object.fromEntries(new URLSearchParams(search || ''));
  if (parts[0] === 'e' && parts[1]) return { edge: parts[1], plugin: parts[2] || null, query };
  if (VIEWS[parts[0]]) return { edge: null, plugin: null, view: parts[0], query };
  return { edge: null, plugin: null, query };
}

function edgeInfo(name) {
  return state.topology && state.topology.edges ? state.topology.edges[name] : undefined;
}

function renderSidebar() {
  if (state.topology) renderTree($('tree'), state.topology, { selected: state.route, connected: state.connected });
}

function setConnection({ status, delay }) {
  state.connected = status === 'connected';
  const el = $('conn');
  const text = {
    connecting: 'connecting…',
    connected: 'live',
    reconnecting: delay ? `reconnecting in ${Math.round(delay / 100) / 10} s…` : 'reconnecting…',
    auth: 'token required',
    stopped: 'stopped',
  }[status] || status;
  el.dataset.status = status;
  replace(el, h('span', { class: 'dot' }), ' ', text);
  el.title = status === 'auth' ? 'click to enter the bridge token'
    : status === 'connected' ? 'receiving live events from the bridge' : 'not receiving live events';
  document.body.classList.toggle('offline', !state.connected);
  renderSidebar();
}

function disposePage() {
  if (!state.page) return;
  for (const fn of state.page.disposers.splice(0)) {
    try { fn(); } catch (e) { console.error(e); }
  }
  state.page = null;
}

function pageKey(route) {
  return `${route.view || ''}:${route.edge || ''}/${route.plugin || ''}?${new URLSearchParams(route.query || {})}`;
}

// (Re)render the page of the current route.
async function renderPage(force = false) {
  const route = state.route;
  const key = pageKey(route);
  const main = $('main');
  const info = route.edge ? edgeInfo(route.edge) : undefined;

  if (route.view) { await renderView(route, key, main, force); return; }
  if (!route.edge) {  // overview: cheap, always rebuilt
    disposePage();
    clear(main);
    if (!state.topology) { main.append(loading('Waiting for the bridge…')); return; }
    overviewPage(main, state.topology, state.connected);
    return;
  }
  if (!route.plugin) {
    disposePage();
    clear(main);
    if (!state.topology) { main.append(loading('Waiting for the bridge…')); return; }
    edgePage(main, route.edge, info, state.connected);
    return;
  }
  // plugin page: keep it alive across topology updates, just flag a missing edge
  const pinfo = info && info.plugins ? info.plugins[route.plugin] : undefined;
  if (state.page && state.page.key === key && !force) {
    if (state.page.live && !pinfo) markGone(true);
    else if (state.page.live) markGone(false);
    else if (pinfo) renderPage(true);  // it was waiting for the edge/plugin: build it now
    return;
  }
  disposePage();
  clear(main);
  const page = { key, disposers: [], live: false };
  state.page = page;
  if (!state.topology) { main.append(loading('Waiting for the bridge…')); return; }
  if (!pinfo) {
    main.append(h('p', { class: 'banner banner-warn', dataset: { testid: 'plugin-missing' } },
      info ? `Edge '${route.edge}' has no plugin '${route.plugin}'.`
        : `Edge '${route.edge}' is not connected. This page loads when it joins.`));
    return;
  }
  page.live = true;
  const gone = h('p', { class: 'banner banner-warn', hidden: true, dataset: { testid: 'edge-gone' } },
    `Edge '${route.edge}' has left the bridge; actions on this page will fail until it returns.`);
  const body = h('div', { class: 'plugin-page', dataset: { plugin: route.plugin, type: pinfo.type || route.plugin } });
  main.append(gone, body);
  page.gone = gone;
  body.append(loading());
  const modName = MODULES[pinfo.ui_module] ? pinfo.ui_module : (MODULES[pinfo.type] ? pinfo.type : null);
  const ctx = {
    edge: route.edge,
    plugin: route.plugin,
    info: pinfo,
    query: route.query || {},
    el: body,
    api: new PluginApi(route.edge, route.plugin),
    events,
    topology: () => state.topology,
    onDispose: (fn) => page.disposers.push(fn),
    alive: () => !!(edgeInfo(route.edge) || {}).plugins,
  };
  try {
    const mod = modName ? await MODULES[modName]() : await generic();
    if (state.page !== page) return;  // navigated away meanwhile
    clear(body);
    await mod.default(ctx);
  } catch (err) {
    console.error(err);
    if (state.page === page) replace(body, errorBox(err));
  }
}

// A view of its own (VIEWS): built once per route, kept across topology updates.
async function renderView(route, key, main, force) {
  if (state.page && state.page.key === key && !force) return;
  disposePage();
  clear(main);
  const page = { key, disposers: [] };
  state.page = page;
  const body = h('div', { class: 'view-page', dataset: { view: route.view } }, loading());
  main.append(body);
  const ctx = { el: body, query: route.query || {}, events, topology: () => state.topology,
    onDispose: (fn) => page.disposers.push(fn) };
  try {
    const mod = await VIEWS[route.view]();
    if (state.page !== page) return;
    clear(body);
    await mod.default(ctx);
  } catch (err) {
    console.error(err);
    if (state.page === page) replace(body, errorBox(err));
  }
}

function markGone(isGone) {
  if (state.page && state.page.gone) state.page.gone.hidden = !isGone;
}

function onRoute() {
  state.route = parseRoute();
  renderSidebar();
  renderPage();
  const main = $('main');
  if (main) main.focus({ preventScroll: true });
}

let lastNames = null;
function onTopology(data) {
  const names = Object.keys((data && data.edges) || {}).sort();
  if (lastNames) {
    const joined = names.filter((n) => !lastNames.includes(n));
    const left = lastNames.filter((n) => !names.includes(n));
    joined.forEach((n) => toast(`Edge '${n}' joined.`, 'info', { timeout: 3000 }));
    left.forEach((n) => toast(`Edge '${n}' left.`, 'info', { timeout: 3000 }));
  }
  lastNames = names;
  state.topology = data;
  renderSidebar();
  renderPage();
}

// After an event-stream gap the tree may be stale: read the topology again.
async function refreshTopology() {
  try {
    const answer = await post('edge/list', undefined, { quiet: true });
    if (answer && answer.data) onTopology(answer.data);
  } catch (e) {
    console.warn('could not re-read the topology after a gap', e);
  }
}

async function start() {
  await redeemLoginLink();
  events.on('status', setConnection);
  $('conn').addEventListener('click', () => { if (events.status === 'auth') askToken(); });
  events.on('topology', onTopology);
  events.on('gap', refreshTopology);
  document.addEventListener('radical:token', (ev) => { if (ev.detail.ok) events.reconnect(); });
  window.addEventListener('hashchange', onRoute);
  setInterval(() => tickWalltimes(document), 1000);
  state.route = parseRoute();
  renderPage();
  events.start();
}

start();
