// queue_info: this edge's allocation, partitions (click one for its jobs), my jobs with
// cancel, and the user's allocations. Built from the plugin's ui_config monitors plus an
// allocations table; "Refresh" bypasses the plugin's cache (force=true).
import { h, add } from './dom.js';
import { buildMonitor } from './monitors.js';
import { pluginHeader } from './pages.js';

const ALLOCATIONS = {
  id: 'allocations', title: 'Allocations / accounts', type: 'table',
  auto_load: 'list_allocations/{sid}', field: 'allocations', key: 'account',
  empty_text: 'No allocations reported (no accounting database?).',
  columns: [
    { field: 'account', label: 'Account' },
    { field: 'user', label: 'User' },
    { field: 'fairshare', label: 'Fairshare' },
    { field: 'qos', label: 'QOS' },
    { field: 'max_jobs', label: 'Max jobs' },
    { field: 'max_submit', label: 'Max submit' },
    { field: 'max_wall', label: 'Max wall' },
  ],
};

const FALLBACK = [
  { id: 'allocation', title: "This edge's job allocation", type: 'card', auto_load: 'job_allocation',
    field: 'allocation', empty_text: 'Not inside a batch job (login node).' },
  { id: 'partitions', title: 'Partitions / Queues', type: 'table', auto_load: 'get_info/{sid}', field: 'queues',
    key: 'name', row_link: 'list_jobs/{sid}/{name}' },
  { id: 'my_jobs', title: 'My jobs', type: 'table', auto_load: 'list_all_jobs/{sid}', field: 'jobs', key: 'job_id',
    row_actions: [{ id: 'cancel', label: '✕ Cancel', style: 'danger', method: 'POST', path: 'cancel/{sid}/{job_id}',
      confirm: 'Cancel job {job_id}?' }] },
];

export default async function mount(ctx) {
  const ui = (ctx.info && ctx.info.ui_config) || {};
  const specs = Array.isArray(ui.monitors) && ui.monitors.length ? ui.monitors : FALLBACK;
  const user = h('input', { class: 'input', type: 'text', placeholder: 'user (default: the edge\'s)',
    'aria-label': 'user', dataset: { testid: 'qi-user' }, style: { width: '200px' } });
  let force = false;
  const query = () => ({ user: user.value.trim() || undefined, force: force ? 'true' : undefined });

  // every monitor call carries ?user=&force= (harmless for job_allocation)
  const api = Object.create(ctx.api);
  api.get = (template, opts = {}) => ctx.api.get(template, { ...opts, query: { ...query(), ...(opts.query || {}) } });
  api.call = (method, template, opts = {}) => ctx.api.call(method, template,
    method === 'GET' ? { ...opts, query: { ...query(), ...(opts.query || {}) } } : opts);
  const mctx = { ...ctx, api };

  // a partition's jobs (row_link) in the columns of "my jobs"
  const jobCols = (specs.find((s) => s.id === 'my_jobs') || {}).columns;
  const withCols = specs.map((s) => (s.row_link && !s.row_link_columns && jobCols ? { ...s, row_link_columns: jobCols } : s));
  const monitors = [...withCols, ALLOCATIONS].map((spec) => buildMonitor(spec, mctx));
  const byId = Object.fromEntries(monitors.map((m) => [m.spec.id, m]));
  const loadAll = async (hard = false) => {
    force = hard;
    try { await Promise.all(monitors.map((m) => m.load())); } finally { force = false; }
  };
  ctx.onDispose(ctx.events.on('open', ({ reconnected }) => { if (reconnected) loadAll(); }));

  add(ctx.el,
    pluginHeader(ctx, {
      onRefresh: () => loadAll(true),
      extra: [user, h('button', { type: 'button', class: 'btn', onclick: () => loadAll() }, 'Apply')],
    }),
    ...monitors.map((m) => m.section));
  await loadAll();
}
