// My work (#/work): the signed-in identity's psij jobs and rhapsody tasks on every edge and
// from every session, read from the bridge's work index (GET /work) -- so another tab,
// another browser, a reload or a bridge restart shows the same list. Sort by any column,
// filter by kind / phase / edge / text, page through, copy an id, open a job's directory in
// the staging browser. Notifications of job/task states refresh the page (coalesced).
import { h, add, replace, badge, card, button, fmtDuration, fmtTime } from './dom.js';
import { get, PluginApi } from './api.js';
import { toast, errorBox } from './ui.js';
import { pluginHref } from './tree.js';
import { browseHref } from './staging.js';

const PAGE_SIZES = [25, 50, 100, 200];
const TOPICS = new Set(['job_status', 'task_status', 'task_status_batch']);
const REFRESH_MS = 400;  // coalesce bursts of notifications into one re-read

// Times in a narrow column: the time of day for today, else day and time; full in the title.
function when(epoch) {
  if (!epoch) return '—';
  const d = new Date(Number(epoch) * 1000);
  const today = d.toDateString() === new Date().toDateString();
  const text = today ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })
    : d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false });
  return h('time', { datetime: d.toISOString(), title: fmtTime(epoch) }, text);
}

const short = (id) => (String(id).length > 12 ? `${String(id).slice(0, 10)}…` : String(id));

// The directory to open for an item: the job's directory, else its stdout's folder.
function outputDir(item) {
  if (item.directory) return item.directory;
  const p = item.stdout_path || item.stderr_path;
  return p ? String(p).replace(/\/[^/]*$/, '') || '/' : null;
}

function stagingOf(topology, edge) {
  const info = topology && topology.edges ? topology.edges[edge] : null;
  const plugins = (info && info.plugins) || {};
  return Object.keys(plugins).find((p) => (plugins[p] || {}).type === 'staging' || p === 'staging') || null;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {  // no clipboard permission (http, headless): select-and-copy fallback
    const ta = h('textarea', { class: 'offscreen', readOnly: true });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    try { document.execCommand('copy'); } catch (e2) { /* nothing more to try */ }
    ta.remove();
  }
  toast(`Copied ${text}`, 'success', { timeout: 2500 });
}

// Batch jobs the schedulers know (queue_info of every edge that has it): also those submitted
// outside radical.edge. Loaded when opened: it costs a call per edge.
function batchSection(ctx) {
  const body = h('div', { dataset: { testid: 'batch-jobs' } });
  const load = async () => {
    const edges = (ctx.topology() || {}).edges || {};
    const sources = [];
    for (const [edge, info] of Object.entries(edges).sort(([a], [b]) => a.localeCompare(b))) {
      const plugins = (info && info.plugins) || {};
      const qi = Object.keys(plugins).find((p) => (plugins[p] || {}).type === 'queue_info');
      if (qi) sources.push([edge, qi]);
    }
    if (!sources.length) { replace(body, h('p', { class: 'empty' }, 'No edge runs the queue_info plugin.')); return; }
    replace(body, h('p', { class: 'muted' }, `Asking ${sources.length} scheduler(s)…`));
    const rows = [];
    const failed = [];
    await Promise.all(sources.map(async ([edge, plugin]) => {
      try {
        // a user asked (opened or refreshed): fresh from the scheduler, not the plugin's cache
        const ans = await new PluginApi(edge, plugin).get('list_all_jobs/{sid}', { quiet: true, query: { force: 'true' } });
        ((ans && ans.jobs) || []).forEach((j) => rows.push({ ...j, edge, plugin }));
      } catch (e) { failed.push(`${edge}: ${e.detail || e.message || e}`); }
    }));
    rows.sort((a, b) => (Number(b.submit_time) || 0) - (Number(a.submit_time) || 0));
    replace(body,
      failed.length ? h('p', { class: 'banner banner-warn' }, `Not answered: ${failed.join('; ')}`) : null,
      rows.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'grid', dataset: { testid: 'batch-rows' } },
        h('thead', {}, h('tr', {}, ['Edge', 'Job', 'Name', 'User', 'Partition', 'State', 'Submitted', 'Started', 'Used', 'Nodes']
          .map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows.map((j) => h('tr', { dataset: { id: String(j.job_id), edge: j.edge } },
          h('td', {}, h('a', { href: pluginHref(j.edge, j.plugin) }, j.edge)),
          h('td', {}, h('code', {}, String(j.job_id))), h('td', { class: 'cmd' }, j.job_name || '—'),
          h('td', {}, j.user || '—'), h('td', {}, j.partition || '—'), h('td', {}, badge(j.state)),
          h('td', {}, when(j.submit_time)), h('td', {}, when(j.start_time)),
          h('td', {}, j.time_used ? fmtDuration(j.time_used) : '—'), h('td', {}, String(j.nodes ?? '—')))))))
        : h('p', { class: 'empty', dataset: { testid: 'batch-empty' } }, 'No batch jobs in the queues.'));
  };
  const details = h('details', { class: 'card', dataset: { testid: 'batch-section' },
    ontoggle: () => { if (details.open) load(); } },
  h('summary', {}, h('strong', {}, '🗄 Batch jobs in the schedulers\' queues'),
    h('span', { class: 'muted' }, ' — from queue_info on every edge, including jobs submitted outside radical.edge')),
  h('div', { class: 'actions' }, button('⟳ Refresh', load, { testid: 'batch-refresh' })), body);
  return details;
}

export default async function mount(ctx) {
  const q = ctx.query || {};
  const view = {
    sort: q.sort || 'submitted', order: q.order || 'desc', kind: q.kind || '', phase: q.phase || '',
    edge: q.edge || '', q: q.q || '', offset: Number(q.offset) || 0,
    limit: PAGE_SIZES.includes(Number(q.limit)) ? Number(q.limit) : 25,
  };
  let alive = true;
  let timer = null;
  ctx.onDispose(() => { alive = false; clearTimeout(timer); });

  const who = h('span', { class: 'muted', dataset: { testid: 'work-user' } });
  const status = h('p', { class: 'muted', role: 'status', dataset: { testid: 'work-count' } });
  const body = h('div', { dataset: { testid: 'work-table' } });
  const pager = h('div', { class: 'pager' });
  const errors = h('div');

  const select = (name, label, options, testid) => {
    const el = h('select', { class: 'input', name, dataset: { testid }, 'aria-label': label,
      onchange: () => { view[name] = el.value; view.offset = 0; load(); } },
    options.map(([v, text]) => h('option', { value: v }, text)));
    el.value = String(view[name]);
    return h('label', { class: 'filter' }, `${label} `, el);
  };
  const edges = () => Object.keys(((ctx.topology() || {}).edges) || {}).sort();
  const edgeSelect = select('edge', 'Edge', [['', 'all'], ...edges().map((e) => [e, e])], 'work-edge');
  if (view.edge && !edges().includes(view.edge)) {
    edgeSelect.querySelector('select').append(h('option', { value: view.edge }, view.edge));
    edgeSelect.querySelector('select').value = view.edge;
  }
  const search = h('input', { type: 'search', class: 'input', name: 'q', value: view.q,
    placeholder: 'id, name, native id…', 'aria-label': 'Search', dataset: { testid: 'work-search' } });
  let searchTimer = null;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { view.q = search.value.trim(); view.offset = 0; load(); }, 250);
  });
  const sizeSel = select('limit', 'Per page', PAGE_SIZES.map((n) => [String(n), String(n)]), 'work-limit');
  sizeSel.querySelector('select').addEventListener('change', (ev) => { view.limit = Number(ev.target.value); });

  // the job's directory in the edge's staging browser (when it has one)
  const filesLink = (i) => {
    const dir = outputDir(i);
    const staging = dir ? stagingOf(ctx.topology(), i.edge) : null;
    if (!staging) return null;
    return h('a', { class: 'btn btn-small', href: browseHref(i.edge, dir, staging), dataset: { testid: 'work-browse' },
      title: `browse ${dir} on ${i.edge}`, 'aria-label': `files of ${i.id}` }, '📁');
  };

  const columns = [
    { key: 'id', label: 'ID', get: (i) => h('span', { class: 'id-cell' },
      h('code', { title: i.id }, short(i.id)), ' ',
      button('📋', () => copyText(i.id), { title: `copy ${i.id}`, testid: 'copy-id', style: 'small' }), ' ',
      filesLink(i)) },
    { key: 'kind', label: 'Kind', get: (i) => h('span', { title: i.kind === 'psij' ? 'psij job' : 'rhapsody task' },
      i.kind === 'psij' ? '🚀' : '🎼', h('span', { class: 'offscreen' }, ` ${i.kind}`)) },
    { key: 'edge', label: 'Edge', get: (i) => h('a', { href: pluginHref(i.edge, i.plugin), title: `${i.edge}/${i.plugin}` }, i.edge) },
    { key: 'name', label: 'Name', cls: 'cmd', get: (i) => h('span', { title: i.name || '' }, i.name || '—') },
    { key: 'state', label: 'State', get: (i) => badge(i.state) },
    { key: 'submitted', label: 'Submitted', get: (i) => when(i.submitted) },
    { key: 'started', label: 'Started', get: (i) => when(i.started) },
    { key: 'ended', label: 'Ended', get: (i) => when(i.ended) },
    { key: 'duration', label: 'Duration', get: (i) => (i.duration === null ? '—' : fmtDuration(i.duration)) },
    { key: null, label: 'Exit', get: (i) => (i.exit_code === null ? '—' : String(i.exit_code)) },
  ];

  const header = () => h('tr', {}, columns.map((c) => {
    if (!c.key) return h('th', { scope: 'col' }, c.label);
    const active = view.sort === c.key;
    const sortAttr = active ? (view.order === 'asc' ? 'ascending' : 'descending') : 'none';
    return h('th', { scope: 'col', 'aria-sort': sortAttr },
      h('button', { type: 'button', class: 'sort-btn', dataset: { testid: `sort-${c.key}` },
        onclick: () => {
          view.order = active && view.order === 'desc' ? 'asc' : 'desc';
          view.sort = c.key;
          view.offset = 0;
          load();
        } }, c.label, active ? (view.order === 'asc' ? ' ▲' : ' ▼') : ''));
  }));

  const render = (ans) => {
    const items = Array.isArray(ans.items) ? ans.items : [];
    who.textContent = ans.user ? `signed in as ${ans.user}` : '';
    if (!ans.total) {
      status.textContent = '';
      const filtered = view.kind || view.phase || view.edge || view.q;
      replace(body, h('p', { class: 'empty', dataset: { testid: 'work-empty' } }, filtered
        ? 'Nothing matches these filters.'
        : 'No jobs or tasks yet. Jobs you submit with psij and tasks you submit with rhapsody, on any edge and from any tab, appear here.'));
      replace(pager);
      return;
    }
    const first = view.offset + 1;
    const last = view.offset + items.length;
    status.textContent = `${first}–${last} of ${ans.total}`;
    replace(body, h('div', { class: 'table-wrap' }, h('table', { class: 'grid work-grid', dataset: { testid: 'work-rows' } },
      h('thead', {}, header()),
      h('tbody', {}, items.map((i) => h('tr', { dataset: { id: i.id, kind: i.kind, edge: i.edge } },
        columns.map((c) => h('td', { class: c.cls }, c.get(i)))))))));
    replace(pager,
      button('‹ Previous', () => { view.offset = Math.max(0, view.offset - view.limit); load(); },
        { testid: 'work-prev', disabled: view.offset === 0 }),
      h('span', { class: 'muted' }, ` page ${Math.floor(view.offset / view.limit) + 1} of ${Math.max(1, Math.ceil(ans.total / view.limit))} `),
      button('Next ›', () => { view.offset += view.limit; load(); },
        { testid: 'work-next', disabled: last >= ans.total }));
  };

  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    const query = { sort: view.sort, order: view.order, offset: view.offset, limit: view.limit };
    for (const k of ['kind', 'phase', 'edge', 'q']) if (view[k]) query[k] = view[k];
    try {
      const ans = await get('work', { query, quiet: true });
      if (!alive || mine !== seq) return;
      replace(errors);
      if (ans.total && view.offset >= ans.total) {  // the page emptied under us: step back
        view.offset = Math.max(0, Math.floor((ans.total - 1) / view.limit) * view.limit);
        load();
        return;
      }
      render(ans);
    } catch (err) {
      if (!alive || mine !== seq) return;
      replace(errors, errorBox(err));
    }
  };
  const soon = () => { clearTimeout(timer); timer = setTimeout(load, REFRESH_MS); };

  ctx.onDispose(ctx.events.onNotification({}, (d, note) => {
    if (note && TOPICS.has(note.topic)) soon();
  }));
  ctx.onDispose(ctx.events.on('open', () => soon()));

  add(ctx.el,
    h('div', { class: 'page-head' },
      h('div', {}, h('h2', { dataset: { testid: 'plugin-title' } }, '🗂 My work'),
        h('p', { class: 'muted' }, 'Your psij jobs and rhapsody tasks on every edge, from every session. ', who)),
      h('div', { class: 'actions' }, button('⟳ Refresh', load, { testid: 'refresh' }))),
    card(null,
      h('div', { class: 'filters' },
        select('kind', 'Kind', [['', 'all'], ['psij', 'psij jobs'], ['rhapsody', 'rhapsody tasks']], 'work-kind'),
        select('phase', 'Show', [['', 'all'], ['active', 'active'], ['ended', 'ended']], 'work-phase'),
        edgeSelect,
        h('label', { class: 'filter' }, 'Search ', search),
        sizeSel),
      errors, status, body, pager),
    batchSection(ctx));
  await load();
}
