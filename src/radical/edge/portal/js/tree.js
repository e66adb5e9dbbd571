// The sidebar tree: bridge -> edges (nested by dotted names: `site.1` under `site`) ->
// plugins. Rebuilt from every `topology` event; what the user opened, closed or dismissed
// survives rebuilds. Built for hundreds of edges: natural order (`x.2` before `x.10`), a
// filter, groups with many children start collapsed, a nested node shows the part of its
// name that differs from its parent (never cut off), and departed edges stay greyed with
// their reason until dismissed. Keyboard: the WAI-ARIA tree pattern (arrows, Home, End).
import { h, replace, fmtDuration } from './dom.js';

//: a node with more child edges than this starts collapsed (the user can open it)
export const GROUP_LIMIT = 12;

const opened = new Set();     // nodes the user opened (beats GROUP_LIMIT)
const closed = new Set();     // nodes the user closed
const dismissed = new Map();  // departed edge -> `since` of the departure dismissed

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
export const naturalCompare = (a, b) => collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);

export function edgeHref(edge) { return `#/e/${encodeURIComponent(edge)}`; }
export function pluginHref(edge, plugin) { return `${edgeHref(edge)}/${encodeURIComponent(plugin)}`; }

// name -> parent name (an edge, or a group prefix shared by >= 2 edges), or null.
export function nesting(names) {
  const edges = new Set(names);
  const prefixCount = new Map();  // every dotted prefix -> how many names start with it
  for (const n of names) {
    const parts = n.split('.');
    for (let k = 1; k < parts.length; k += 1) {
      const p = parts.slice(0, k).join('.');
      prefixCount.set(p, (prefixCount.get(p) || 0) + 1);
    }
  }
  const parentOf = (name) => {
    const parts = name.split('.');
    for (let k = parts.length - 1; k >= 1; k -= 1) {
      const p = parts.slice(0, k).join('.');
      if (p && (edges.has(p) || (prefixCount.get(p) || 0) >= 2)) return p;
    }
    return null;
  };
  const parents = new Map();
  const groups = new Set();
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
  return h('span', { class: ['live', `live-${state}`], title: label, role: 'img', 'aria-label': label, dataset: { live: state } });
}

// Departed edges the user has not dismissed (a new departure shows again).
function visibleDepartures(topology) {
  const out = {};
  const edges = (topology && topology.edges) || {};
  for (const [n, d] of Object.entries((topology && topology.departed) || {})) {
    if (!edges[n] && dismissed.get(n) !== d.since) out[n] = d;
  }
  return out;
}

function dismissDeparture(name, since) { dismissed.set(name, since); }

function pluginLabel(name, info) {
  const ui = (info && info.ui_config) || {};
  return [h('span', { class: 'picon', 'aria-hidden': 'true' }, ui.icon ? String(ui.icon) : '🧩'), ' ', h('span', { class: 'pname' }, name)];
}

// What a nested node shows: its name without the parent's prefix (`.10` under `frontier`).
export function shortName(name, parent) {
  return parent && name.startsWith(`${parent}.`) ? name.slice(parent.length) : name;
}

// Open unless the user closed it; by default closed when it has many child edges, or when it
// is a leaf among many siblings (200 edges should not mean 400 rows of plugins).
function isOpen(name, kids, ctx) {
  if (closed.has(name)) return false;
  if (ctx.filtering || opened.has(name) || ctx.selected.edge === name) return true;
  return kids <= GROUP_LIMIT && !(kids === 0 && ctx.crowded.has(name));
}

function toggle(name, open) {
  if (open) { opened.add(name); closed.delete(name); } else { closed.add(name); opened.delete(name); }
}

function departedRow(name, d, ctx, label) {
  const since = d.since ? new Date(d.since * 1000).toLocaleTimeString() : '';
  return h('div', { class: 'node-row departed-row' },
    h('span', { class: 'twisty', 'aria-hidden': 'true' }, '·'),
    h('a', { class: 'node-link', href: edgeHref(name), title: `${name} left${since ? ` at ${since}` : ''}: ${d.detail || d.reason}`,
      'aria-label': `${name} (left: ${d.reason})`, tabIndex: -1, dataset: { nav: name, testid: 'edge-link' } }, label),
    h('span', { class: 'left-reason', dataset: { testid: 'left-reason' } }, `left: ${d.reason}`),
    h('button', { type: 'button', class: 'dismiss', title: `Dismiss ${name}`, 'aria-label': `Dismiss departed edge ${name}`,
      dataset: { testid: 'dismiss-departed' }, onclick: () => { dismissDeparture(name, d.since); ctx.rerender(); } }, '×'));
}

function edgeNode(name, ctx) {
  const info = ctx.edges[name];
  const gone = ctx.departed[name];
  const children = ctx.children.get(name) || [];
  const isGroup = !info && !gone;
  const plugins = info ? Object.keys(info.plugins || {}).sort(naturalCompare) : [];
  const kids = plugins.length + children.length;
  const open = kids > 0 && isOpen(name, children.length, ctx);
  const label = shortName(name, ctx.parents.get(name));
  const flip = () => { toggle(name, !open); ctx.rerender(name); };
  const twisty = h('button', { type: 'button', class: 'twisty', tabIndex: -1, 'aria-hidden': 'true',
    disabled: !kids, onclick: flip }, kids ? (open ? '▾' : '▸') : '·');
  const selected = ctx.selected.edge === name && !ctx.selected.plugin;
  let row;
  if (gone) {
    row = departedRow(name, gone, ctx, label);
  } else {
    const end = info ? walltimeEnd(info) : null;
    row = h('div', { class: ['node-row', selected && 'selected'] },
      twisty,
      isGroup
        ? h('span', { class: 'node-group', title: `group ${name}.*`, tabIndex: -1, dataset: { nav: `group:${name}` } },
          `${label}.*`, h('span', { class: 'kids' }, ` (${children.length})`))
        : h('a', { class: 'node-link', href: edgeHref(name), title: name, 'aria-label': name, tabIndex: -1,
          'aria-current': selected ? 'page' : null, dataset: { testid: 'edge-link', nav: name } }, label),
      info ? roleBadge(info.role) : null,
      info ? liveness(info, ctx.connected) : null,
      end ? h('span', { class: 'walltime', title: 'remaining walltime', dataset: { wallEnd: String(end) } }, walltimeText(end)) : null);
  }
  const data = isGroup ? { group: name } : gone ? { edge: name, departed: gone.reason } : { edge: name, role: info.role || '' };
  const li = h('li', { class: ['tree-edge', isGroup && 'tree-group', gone && 'departed'], role: 'treeitem',
    'aria-expanded': kids ? String(open) : null, 'aria-selected': String(selected), dataset: data }, row);
  li.toggleNode = kids ? (want) => { if (want !== open) flip(); } : null;
  if (open) {
    li.appendChild(h('ul', { role: 'group', class: 'subtree' },
      plugins.map((p) => {
        const sel = ctx.selected.edge === name && ctx.selected.plugin === p;
        return h('li', { class: ['tree-plugin', sel && 'selected'], role: 'treeitem', 'aria-selected': String(sel), dataset: { plugin: p } },
          h('a', { href: pluginHref(name, p), tabIndex: -1, 'aria-current': sel ? 'page' : null, dataset: { nav: `${name}/${p}` },
            title: ((info.plugins[p] || {}).ui_config || {}).title || p }, pluginLabel(p, info.plugins[p])));
      }),
      children.map((c) => edgeNode(c, ctx))));
  }
  return li;
}

// Names to show for a filter: those that match (name, host, role or a plugin) and every
// ancestor of a match (so a match is shown where it lives).
function filterNames(names, all, query) {
  const q = query.trim().toLowerCase();
  if (!q) return names;
  const hit = names.filter((n) => {
    const info = all[n] || {};
    return n.toLowerCase().includes(q) || String(info.host || '').toLowerCase().includes(q)
      || String(info.role || '').toLowerCase() === q
      || Object.keys(info.plugins || {}).some((p) => p.toLowerCase() === q);
  });
  const keep = new Set(hit);
  for (const n of hit) {
    const parts = n.split('.');
    for (let k = 1; k < parts.length; k += 1) {
      const p = parts.slice(0, k).join('.');
      if (all[p]) keep.add(p);
    }
  }
  return names.filter((n) => keep.has(n));
}

// Render the whole tree into `container`. `filter`: the text of the filter box.
export function renderTree(container, topology, { selected = {}, connected = true, filter = '' } = {}) {
  const edges = (topology && topology.edges) || {};
  const departed = visibleDepartures(topology);
  const all = { ...departed, ...edges };
  const total = Object.keys(edges).length;
  const names = filterNames(Object.keys(all).sort(naturalCompare), all, filter);
  const { parents, groups } = nesting(names);
  const children = new Map();
  const roots = [];
  for (const n of [...names, ...groups].sort(naturalCompare)) {
    const p = parents.get(n);
    if (p) {
      if (!children.has(p)) children.set(p, []);
      children.get(p).push(n);
    } else {
      roots.push(n);
    }
  }
  // leaves among many live siblings (departed ones do not crowd anybody)
  const crowded = new Set([...children.values(), roots]
    .filter((sibs) => sibs.filter((n) => !departed[n]).length > GROUP_LIMIT).flat());
  const focusKey = container.contains(document.activeElement) && document.activeElement.dataset
    ? document.activeElement.dataset.nav : null;
  const ctx = { edges, departed, children, parents, crowded, selected, connected, filtering: !!filter.trim(),
    rerender: (key) => renderTree(container, topology, { selected, connected, filter }) && focusNav(container, key) };
  const bridgeUrl = topology && topology.bridge ? topology.bridge.url : '';
  const shown = names.filter((n) => edges[n]).length;
  const bridgeRow = h('div', { class: ['node-row', 'bridge-row', !selected.edge && 'selected'] },
    h('span', { class: 'twisty', 'aria-hidden': 'true' }, '▾'),
    h('a', { class: 'node-link', href: '#/', title: bridgeUrl || 'bridge', tabIndex: -1, 'aria-current': selected.edge ? null : 'page',
      dataset: { testid: 'bridge-link', nav: 'bridge' } }, '🌉 Bridge'),
    h('span', { class: 'count', title: 'connected edges', dataset: { testid: 'edge-count' } },
      ctx.filtering ? `${shown} / ${total}` : String(total)));
  const goneNames = Object.keys(departed);
  const dismissAll = goneNames.length > 1
    ? h('button', { type: 'button', class: 'dismiss-all', dataset: { testid: 'dismiss-all-departed' },
      onclick: () => { goneNames.forEach((n) => dismissDeparture(n, departed[n].since)); ctx.rerender(); } },
    `Dismiss ${goneNames.length} departed edges`)
    : null;
  replace(container,
    h('ul', { class: 'tree', role: 'tree', 'aria-label': 'bridge, edges and plugins' },
      h('li', { class: 'tree-bridge', role: 'treeitem', 'aria-expanded': 'true', 'aria-selected': String(!selected.edge) }, bridgeRow,
        roots.length
          ? h('ul', { role: 'group', class: 'subtree' }, roots.map((n) => edgeNode(n, ctx)))
          : h('p', { class: 'empty tree-empty' }, ctx.filtering ? 'No edge matches the filter.' : 'No edges connected.'))),
    dismissAll);
  tickWalltimes(container);
  rove(container, focusKey);
  if (!container.dataset.keys) {
    container.dataset.keys = '1';
    container.addEventListener('keydown', onTreeKey);
  }
  return true;
}

// ------------------------------------------------------------------ keyboard (roving tabindex)
function navItems(container) {
  return [...container.querySelectorAll('[data-nav]')];
}

// Exactly one item is in the Tab order: the focused one, else the selected, else the first.
function rove(container, key) {
  const items = navItems(container);
  if (!items.length) return;
  const pick = (key && items.find((el) => el.dataset.nav === key))
    || items.find((el) => el.getAttribute('aria-current') === 'page') || items[0];
  items.forEach((el) => { el.tabIndex = el === pick ? 0 : -1; });
  if (key && pick.dataset.nav === key) pick.focus({ preventScroll: true });
}

function focusNav(container, key) {
  const el = key && navItems(container).find((e) => e.dataset.nav === key || e.dataset.nav === `group:${key}`);
  if (el) { rove(container, el.dataset.nav); }
}

function onTreeKey(ev) {
  const container = ev.currentTarget;
  const items = navItems(container);
  const i = items.indexOf(document.activeElement);
  if (i < 0) return;
  const item = items[i];
  const li = item.closest('li[role=treeitem]');
  const go = (el) => { if (el) { rove(container, el.dataset.nav); el.focus(); } };
  const parentItem = () => {
    const up = li.parentElement.closest('li[role=treeitem]');
    return up ? up.querySelector(':scope > .node-row [data-nav]') : null;
  };
  switch (ev.key) {
    case 'ArrowDown': go(items[i + 1]); break;
    case 'ArrowUp': go(items[i - 1]); break;
    case 'Home': go(items[0]); break;
    case 'End': go(items[items.length - 1]); break;
    case 'ArrowRight':
      if (li.getAttribute('aria-expanded') === 'false' && li.toggleNode) li.toggleNode(true);
      else if (li.getAttribute('aria-expanded') === 'true') go(items[i + 1]);
      break;
    case 'ArrowLeft':
      if (li.getAttribute('aria-expanded') === 'true' && li.toggleNode) li.toggleNode(false);
      else go(parentItem());
      break;
    case 'Enter':
    case ' ':
      if (item.tagName !== 'A') {
        if (li.toggleNode) li.toggleNode(li.getAttribute('aria-expanded') !== 'true');
      } else if (ev.key === ' ') {
        item.click();
      } else {
        return;  // a link's own Enter
      }
      break;
    default:
      return;
  }
  ev.preventDefault();
}
