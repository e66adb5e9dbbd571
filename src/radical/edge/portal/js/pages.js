// The bridge (overview) page, the edge page and the header every plugin page starts with,
// including the management actions (disconnect an edge, terminate the bridge).
import { h, add, kvList, card, button, fmtDuration, fmtValue, table } from './dom.js';
import { post } from './api.js';
import { toast, confirmDialog } from './ui.js';
import { roleBadge, liveness, walltimeEnd, walltimeText, edgeHref, pluginHref, naturalCompare } from './tree.js';

function walltimeNode(info) {
  const end = walltimeEnd(info);
  if (!end) return 'unlimited';
  return h('span', { class: 'walltime', dataset: { wallEnd: String(end) } }, walltimeText(end));
}

export async function disconnectEdge(name) {
  const ok = await confirmDialog({
    title: `Disconnect edge '${name}'?`,
    message: `The edge service '${name}' will shut down and leave the bridge. Jobs it already submitted keep running, but it must be restarted to be reachable again.`,
    confirmLabel: 'Disconnect',
  });
  if (!ok) return false;
  const ans = await post(`edge/disconnect/${encodeURIComponent(name)}`);
  toast(`Edge '${ans.edge || name}' was asked to shut down.`, 'success');
  return true;
}

export async function terminateBridge() {
  const ok = await confirmDialog({
    title: 'Terminate the bridge?',
    message: 'The bridge process will exit. Edges keep running, but nobody can reach them through this bridge until it is started again.',
    confirmLabel: 'Terminate bridge',
  });
  if (!ok) return false;
  await post('bridge/terminate');
  // the app shows a final "bridge stopped" state instead of reconnecting forever
  document.dispatchEvent(new CustomEvent('radical:terminated'));
  return true;
}

function pluginChips(name, info) {
  const plugins = Object.entries(info.plugins || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!plugins.length) return h('span', { class: 'muted' }, 'no plugins');
  return h('div', { class: 'chips' }, plugins.map(([p, pi]) => h('a', {
    class: 'chip', href: pluginHref(name, p), title: ((pi || {}).ui_config || {}).description || p,
  }, `${((pi || {}).ui_config || {}).icon || '🧩'} ${p}`)));
}

export function overviewPage(el, topology, connected) {
  const edges = (topology && topology.edges) || {};
  const names = Object.keys(edges).sort(naturalCompare);
  const bridge = (topology && topology.bridge) || {};
  add(el,
    h('div', { class: 'page-head' }, h('h2', {}, '🌉 Bridge')),
    card('Bridge', kvList([
      ['URL', bridge.url || location.origin],
      ['ID', bridge.id || '—'],
      ['Connection', connected ? 'live (events streaming)' : 'reconnecting…'],
      ['Edges', String(names.length)],
    ])),
    card('Edges', table([
      { label: 'Edge', get: (n) => h('a', { href: edgeHref(n) }, n) },
      { label: 'Role', get: (n) => roleBadge(edges[n].role) },
      { label: 'Status', get: (n) => liveness(edges[n], connected) },
      { label: 'Host', get: (n) => edges[n].host },
      { label: 'Walltime left', get: (n) => walltimeNode(edges[n]) },
      { label: 'Plugins', get: (n) => pluginChips(n, edges[n]) },
    ], names, { empty: 'No edges connected. Start one with `radical-edge edge --name NAME`.',
      rowProps: (n) => ({ dataset: { edgeRow: n } }) })),
    adminCard());
}

// What stops the whole service sits apart, below everything else, and asks first.
function adminCard() {
  const c = card('Administration',
    h('p', { class: 'muted' }, 'Stopping the bridge cuts every user of this portal and every client off the edges until it is started again; the edges keep running.'),
    h('div', { class: 'actions' },
      button('🛑 Terminate bridge', () => terminateBridge().catch(() => {}), { style: 'danger', testid: 'terminate-bridge' })));
  c.classList.add('admin');
  c.setAttribute('aria-label', 'Administration');
  return c;
}

// Why an edge left, as one line (from the topology's `departed` entry).
export function departureText(name, d) {
  if (!d) return `Edge '${name}' is not connected.`;
  const when = d.since ? ` at ${new Date(d.since * 1000).toLocaleTimeString()}` : '';
  return `Edge '${name}' left${when}: ${d.detail || d.reason}.`;
}

export function edgePage(el, name, info, connected, departed) {
  if (!info) {
    add(el, h('div', { class: 'page-head' }, h('h2', {}, `Edge ${name}`)),
      h('p', { class: 'banner banner-warn', dataset: { testid: 'edge-gone', reason: departed ? departed.reason : 'unknown' } },
        `${departureText(name, departed)} This page comes back when it (re)joins.`));
    return;
  }
  const alloc = info.allocation;
  add(el, 
    h('div', { class: 'page-head' },
      h('h2', {}, `📡 ${name} `, roleBadge(info.role), ' ', liveness(info, connected)),
      h('div', { class: 'actions' },
        button('⏏ Disconnect edge', () => disconnectEdge(name).catch(() => {}), { style: 'danger', testid: 'disconnect-edge' }))),
    h('div', { class: 'cards' },
      card('Edge', kvList([
        ['Name', name],
        ['Host', info.host],
        ['Role', info.role],
        ['Accepting work', info.accepting === false ? 'no (draining)' : 'yes'],
        ['Scheduler', info.scheduler || '—'],
        ['Batch job', info.job_id || '—'],
        ['Walltime left', walltimeNode(info)],
        ['Version', info.version],
        ['Up since', info.started ? new Date(info.started * 1000).toLocaleString() : '—'],
      ])),
      alloc ? card('Allocation', kvList(Object.entries(alloc).map(([k, v]) => [k, k === 'runtime' ? fmtDuration(v) : fmtValue(v)]))) : null),
    card('Plugins', table([
      { label: 'Plugin', get: ([p, pi]) => h('a', { href: pluginHref(name, p) }, `${(pi.ui_config || {}).icon || '🧩'} ${p}`) },
      { label: 'Title', get: ([, pi]) => (pi.ui_config || {}).title || '—' },
      { label: 'Version', get: ([, pi]) => pi.version },
      { label: 'Namespace', get: ([, pi]) => pi.namespace },
      { label: 'Description', get: ([, pi]) => (pi.ui_config || {}).description || '' },
    ], Object.entries(info.plugins || {}).sort(([a], [b]) => a.localeCompare(b)), { empty: 'This edge loads no plugins.' })),
    unavailableCard(info));
}

// Plugins the edge does not offer, and why (e.g. queue_info without a batch system).
function unavailableCard(info) {
  const rows = Object.entries(info.unavailable || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!rows.length) return null;
  return card('Unavailable plugins', table([
    { label: 'Plugin', get: ([p]) => p },
    { label: 'Why', get: ([, why]) => String(why) },
  ], rows));
}

// The heading of a plugin page: icon, title, description and an optional refresh button.
export function pluginHeader(ctx, { onRefresh, extra } = {}) {
  const ui = (ctx.info && ctx.info.ui_config) || {};
  return h('div', { class: 'page-head' },
    h('div', {},
      h('h2', { dataset: { testid: 'plugin-title' } }, `${ui.icon || '🧩'} ${ui.title || ctx.plugin}`),
      h('p', { class: 'muted' },
        h('a', { href: edgeHref(ctx.edge) }, ctx.edge), ` / ${ctx.plugin}`,
        ctx.info && ctx.info.version ? ` · v${ctx.info.version}` : '',
        ui.description ? ` — ${ui.description}` : '')),
    h('div', { class: 'actions' },
      extra || null,
      onRefresh ? button('⟳ Refresh', onRefresh, { testid: 'refresh' }) : null));
}
