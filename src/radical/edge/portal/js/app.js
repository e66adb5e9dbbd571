// The shell: connection status, the live tree, the hash router and the page lifecycle.
//   #/                  bridge overview
//   #/e/EDGE            one edge
//   #/e/EDGE/PLUGIN     a plugin page (its own module, or the generic ui_config renderer)
import { h, replace, clear } from './dom.js';
import { PluginApi, askToken, post, redeemLoginLink } from './api.js';
import { EventStream } from './sse.js';
import { renderTree, tickWalltimes } from './tree.js';
import { overviewPage, edgePage, departureText } from './pages.js';
import { toast, loading, errorBox } from './ui.js';
import { showBridgeState, holdWhileOffline, ChangeToasts } from './shell.js';

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
  terminated: false,  // this page terminated the bridge: a final state, not "reconnecting"
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

function departedInfo(name) {
  return state.topology ? (state.topology.departed || {})[name] : undefined;
}

function renderSidebar() {
  if (state.topology) {
    renderTree($('tree'), state.topology, { selected: state.route, connected: state.connected, filter: $('tree-filter').value });
  }
}

function setConnection({ status, delay }) {
  if (status === 'connected') state.terminated = false;
  if (state.terminated && status !== 'auth') status = 'stopped';
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
  showBridgeState($('bridge-banner'), status, { delay, retry: () => { state.terminated = false; events.reconnect(); } });
  holdWhileOffline($('main'), !state.connected && status !== 'connecting');
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

  document.title = route.view
    ? `${route.view === 'work' ? 'My work' : route.view} · Edge Explorer`
    : route.edge
      ? `${route.plugin ? `${route.plugin} · ` : ''}${route.edge} · Edge Explorer`
      : 'Bridge · Edge Explorer';
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
    edgePage(main, route.edge, info, state.connected, departedInfo(route.edge));
    return;
  }
  // plugin page: keep it alive across topology updates, just flag a missing edge
  const pinfo = info && info.plugins ? info.plugins[route.plugin] : undefined;
  if (state.page && state.page.key === key && !force) {
    if (state.page.live && !pinfo) markGone(true);
    else if (state.page.live && state.page.wasGone) renderPage(true);  // it returned: fresh state
    else if (!state.page.live && pinfo) renderPage(true);  // it was waiting for the edge/plugin
    return;
  }
  disposePage();
  clear(main);
  const page = { key, disposers: [], live: false };
  state.page = page;
  if (!state.topology) { main.append(loading('Waiting for the bridge…')); return; }
  if (!pinfo) {
    const d = departedInfo(route.edge);
    main.append(info
      ? h('p', { class: 'banner banner-warn', dataset: { testid: 'plugin-missing' } }, `Edge '${route.edge}' has no plugin '${route.plugin}'.`)
      : h('p', { class: 'banner banner-warn', dataset: { testid: 'edge-gone', reason: d ? d.reason : 'unknown' } },
        `${departureText(route.edge, d)} This page loads when it joins.`));
    return;
  }
  page.live = true;
  const gone = h('p', { class: 'banner banner-warn', hidden: true, dataset: { testid: 'edge-gone' } });
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
  let mod;
  try {
    mod = modName ? await MODULES[modName]() : await generic();
  } catch (err) {  // the bridge was away while the module loaded: retried on reconnect
    console.warn('page module did not load', err);
    if (state.page === page) {
      page.failed = true;
      replace(body, errorBox(state.connected ? err : 'this page could not load while the bridge is unreachable; it loads when the bridge is back'));
    }
    return;
  }
  if (state.page !== page) return;  // navigated away meanwhile
  try {
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

// The edge of the open plugin page left (or came back): say so, with why, and grey out
// what is shown (it is no longer live); a return rebuilds the page from fresh state.
function markGone(isGone) {
  const page = state.page;
  if (!page || !page.gone) return;
  page.gone.hidden = !isGone;
  if (isGone) {
    page.wasGone = true;
    const { edge, plugin } = state.route;
    const d = departedInfo(edge);
    page.gone.dataset.reason = d ? d.reason : edgeInfo(edge) ? 'plugin-gone' : 'unknown';
    const what = edgeInfo(edge) ? `Edge '${edge}' no longer offers plugin '${plugin}'.` : departureText(edge, d);
    page.gone.textContent = `${what} What this page shows is no longer live, and actions fail until it returns; the page reloads itself then.`;
  }
  const body = $('main').querySelector('.plugin-page');
  if (body) body.classList.toggle('stale', isGone);
}

function onRoute() {
  state.route = parseRoute();
  document.body.classList.remove('drawer-open');
  $('drawer-toggle').setAttribute('aria-expanded', 'false');
  renderSidebar();
  renderPage();
  const main = $('main');
  if (main) main.focus({ preventScroll: true });
}

const changes = new ChangeToasts(toast);
function onTopology(data) {
  changes.update(data);
  state.topology = data;
  renderSidebar();
  renderPage();
}

// Narrow screens: the tree is a drawer; the top bar's button opens it, Escape closes it.
function wireDrawer() {
  const btn = $('drawer-toggle');
  const set = (open) => {
    document.body.classList.toggle('drawer-open', open);
    btn.setAttribute('aria-expanded', String(open));
    if (open) {
      const item = $('tree').querySelector('[data-nav][tabindex="0"]');
      (item || $('tree-filter')).focus();
    }
  };
  btn.addEventListener('click', () => set(!document.body.classList.contains('drawer-open')));
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && document.body.classList.contains('drawer-open')) { set(false); btn.focus(); }
  });
  $('skip-link').addEventListener('click', (ev) => { ev.preventDefault(); $('main').focus(); });
  $('tree-filter').addEventListener('input', renderSidebar);
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
  events.on('open', ({ reconnected }) => {  // a page whose module failed to load: again now
    if (reconnected && state.page && state.page.failed) renderPage(true);
  });
  document.addEventListener('radical:token', (ev) => { if (ev.detail.ok) events.reconnect(); });
  document.addEventListener('radical:terminated', () => {
    state.terminated = true;
    events.stop();
  });
  wireDrawer();
  window.addEventListener('hashchange', onRoute);
  setInterval(() => tickWalltimes(document), 1000);
  state.route = parseRoute();
  renderPage();
  events.start();
}

start();
