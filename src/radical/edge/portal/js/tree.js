// The sidebar tree: bridge -> edges (nested by dotted names: `site.1` under `site`) ->
// plugins. Rebuilt from every `topology` event; collapsed state survives rebuilds.
import { h, replace, fmtDuration } from './dom.js';

const collapsed = new Set();

export function edgeHref(edge) { return `#/e/${encodeURIComponent(edge)}`; }
export function pluginHref(edge, plugin) { return `${edgeHref(edge)}/${encodeURIComponent(plugin)}`; }

// name -> parent name (an edge, or a group prefix shared by >= 2 edges), or null.
export function nesting(names) {
  const edges = new Set(names);
  const shared = (p) => names.filter((n) => n.startsWith(`${p}.`)).length;
  const groups = new Set();
  const parentOf = (name) => {
    const parts = name.split('.');
    for (let k = parts.length - 1; k >= 1; k -= 1) {
      const p = parts.slice(0, k).join('.');
      if (p && (edges.has(p) || shared(p) >= 2)) return p;
    }
    return null;
  };
  const parents = new Map();
  const queue = [...names];
  while (queue.length) {
    const n = queue.shift();
    if (parents.has(n)) continue;
    const p = parentOf(n);
    parents.set(n, p);
    if (p && !edges.has(p) && !groups.has(p)) { groups.add(p); queue.push(p); }
  }
  return { parents, groups };
}

export function walltimeEnd(info) {
  const rem = info && info.walltime_remaining;
  return rem === null || rem === undefined ? null : Date.now() / 1000 + Number(rem);
}

export function walltimeText(end) {
  if (!end) return '';
  const left = Math.max(0, Math.round(end - Date.now() / 1000));
  return `⏳ ${fmtDuration(left)}`;
}

// Refresh every visible countdown (called once a second by the app).
export function tickWalltimes(root = document) {
  root.querySelectorAll('[data-wall-end]').forEach((el) => {
    const end = Number(el.dataset.wallEnd);
    el.textContent = walltimeText(end);
    el.classList.toggle('warn', end - Date.now() / 1000 < 600);
  });
}

export function roleBadge(role) {
  const r = role || 'unknown';
  return h('span', { class: ['role', `role-${String(r).replace(/[^a-z]/gi, '')}`], title: `${r} node`, dataset: { role: r } }, r);
}

export function liveness(info, connected) {
  let state = 'online';
  if (!connected) state = 'unknown';
  else if (info && info.accepting === false) state = 'draining';
  const label = { online: 'online', draining: 'draining (walltime ending, not accepting work)', unknown: 'status unknown (bridge connection lost)' }[state];
  return h('span', { class: ['live', `live-${state}`], title: label, 'aria-label': label, dataset: { live: state } });
}

function pluginLabel(name, info) {
  const ui = (info && info.ui_config) || {};
  return [h('span', { class: 'picon' }, ui.icon ? String(ui.icon) : '🧩'), ' ', h('span', { class: 'pname' }, name)];
}

function edgeNode(name, info, ctx) {
  const children = ctx.children.get(name) || [];
  const isGroup = !info;
  const open = !collapsed.has(name);
  const plugins = info ? Object.keys(info.plugins || {}).sort() : [];
  const hasKids = plugins.length + children.length > 0;
  const toggle = h('button', { type: 'button', class: 'twisty', 'aria-label': open ? 'collapse' : 'expand',
    'aria-expanded': String(open), disabled: !hasKids,
    onclick: () => { if (collapsed.has(name)) collapsed.delete(name); else collapsed.add(name); ctx.rerender(); } },
  hasKids ? (open ? '▾' : '▸') : '·');
  const selected = ctx.selected.edge === name && !ctx.selected.plugin;
  const end = info ? walltimeEnd(info) : null;
  const row = h('div', { class: ['node-row', selected && 'selected'] },
    toggle,
    isGroup
      ? h('span', { class: 'node-group', title: `group ${name}` }, `${name}.*`)
      : h('a', { class: 'node-link', href: edgeHref(name), dataset: { testid: 'edge-link' } }, name),
    info ? roleBadge(info.role) : null,
    info ? liveness(info, ctx.connected) : null,
    end ? h('span', { class: 'walltime', title: 'remaining walltime', dataset: { wallEnd: String(end) } }, walltimeText(end)) : null);
  const li = h('li', { class: ['tree-edge', isGroup && 'tree-group'], role: 'treeitem',
    'aria-expanded': String(open), dataset: isGroup ? { group: name } : { edge: name, role: info.role || '' } }, row);
  if (open && hasKids) {
    li.appendChild(h('ul', { role: 'group', class: 'subtree' },
      plugins.map((p) => {
        const sel = ctx.selected.edge === name && ctx.selected.plugin === p;
        return h('li', { class: ['tree-plugin', sel && 'selected'], role: 'treeitem', dataset: { plugin: p } },
          h('a', { href: pluginHref(name, p), title: ((info.plugins[p] || {}).ui_config || {}).title || p }, pluginLabel(p, info.plugins[p])));
      }),
      children.map((c) => edgeNode(c, ctx.edges[c], ctx))));
  }
  return li;
}

// Render the whole tree into `container`.
export function renderTree(container, topology, { selected = {}, connected = true } = {}) {
  const edges = (topology && topology.edges) || {};
  const names = Object.keys(edges).sort();
  const { parents, groups } = nesting(names);
  const children = new Map();
  const roots = [];
  for (const n of [...names, ...groups].sort()) {
    const p = parents.get(n);
    if (p) {
      if (!children.has(p)) children.set(p, []);
      children.get(p).push(n);
    } else {
      roots.push(n);
    }
  }
  const ctx = { edges, children, selected, connected, rerender: () => renderTree(container, topology, { selected, connected }) };
  const bridgeUrl = topology && topology.bridge ? topology.bridge.url : '';
  const bridgeRow = h('div', { class: ['node-row', 'bridge-row', !selected.edge && 'selected'] },
    h('span', { class: 'twisty' }, '▾'),
    h('a', { class: 'node-link', href: '#/', title: bridgeUrl || 'bridge', dataset: { testid: 'bridge-link' } }, '🌉 Bridge'),
    h('span', { class: 'count', title: 'connected edges', dataset: { testid: 'edge-count' } }, String(names.length)));
  replace(container,
    h('ul', { class: 'tree', role: 'tree', 'aria-label': 'bridge, edges and plugins' },
      h('li', { class: 'tree-bridge', role: 'treeitem', 'aria-expanded': 'true' }, bridgeRow,
        roots.length
          ? h('ul', { role: 'group', class: 'subtree' }, roots.map((n) => edgeNode(n, edges[n], ctx)))
          : h('p', { class: 'empty tree-empty' }, 'No edges connected.'))));
  tickWalltimes(container);
}
