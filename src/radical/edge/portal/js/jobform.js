// What a batch-job form knows about the edge's scheduler: queue/partition and account pickers
// filled from the edge's queue_info plugin (when it has one), the chosen queue's limits shown
// beside duration and nodes, and field validators that say what is wrong while typing.
// Used by the psij submit form and the "launch an edge" form.
import { PluginApi } from './api.js';
import { fmtDuration } from './dom.js';

// '[D-]HH:MM[:SS]', 'MM:SS' or seconds -> seconds; null when empty; NaN when malformed
// (the same forms the psij plugin accepts, see plugins/psij/spec.py parse_duration).
export function parseDuration(text) {
  const s = String(text ?? '').trim();
  if (!s) return null;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(s);
  if (!m) return NaN;
  const [, d, a, b, c] = m;
  const nums = [a, b, c].filter((x) => x !== undefined).map(Number);
  let hh = 0; let mm = 0; let ss = 0;
  if (d !== undefined) [hh, mm = 0, ss = 0] = nums;
  else if (nums.length === 2) [mm, ss] = nums;
  else if (nums.length === 3) [hh, mm, ss] = nums;
  else [ss] = nums;
  return Number(d || 0) * 86400 + hh * 3600 + mm * 60 + ss;
}

// queue_info limit (minutes, or 'UNLIMITED') -> seconds or null
function limitSeconds(queue) {
  const t = queue ? queue.time_limit : null;
  const n = Number(t);
  return t === null || t === undefined || t === '' || Number.isNaN(n) ? null : n * 60;
}

// The edge's queue_info plugin instance, if it has one.
function queueInfoPlugin(ctx) {
  const info = ((ctx.topology() || {}).edges || {})[ctx.edge];
  const plugins = (info && info.plugins) || {};
  return Object.keys(plugins).find((p) => (plugins[p] || {}).type === 'queue_info') || null;
}

// {queues: {NAME: {...}}, accounts: [..]} from the edge's queue_info, or null without one
// (or when it does not answer: the form then keeps free-text fields).
export async function schedulerInfo(ctx) {
  const plugin = queueInfoPlugin(ctx);
  if (!plugin) return null;
  const api = new PluginApi(ctx.edge, plugin);
  try {
    const [info, allocs] = await Promise.all([
      api.get('get_info/{sid}', { quiet: true }),
      api.get('list_allocations/{sid}', { quiet: true }).catch(() => ({ allocations: [] })),
    ]);
    const queues = (info && info.queues) || {};
    const accounts = [...new Set(((allocs && allocs.allocations) || []).map((a) => a.account).filter(Boolean))].sort();
    return Object.keys(queues).length ? { queues, accounts } : null;
  } catch (e) {
    return null;
  }
}

function queueLabel(q) {
  const limit = limitSeconds(q);
  const bits = [q.state && String(q.state).toLowerCase(),
    `${q.nodes_idle ?? '?'}/${q.nodes_total ?? '?'} nodes idle`,
    limit ? `max ${fmtDuration(limit)}` : 'no time limit'];
  return `${q.name}${q.default ? ' (default)' : ''} — ${bits.filter(Boolean).join(', ')}`;
}

// Field specs for queue, account, duration and nodes; `sched` from schedulerInfo or null.
// `chosen()` returns the queue record the form currently targets (for the validators).
export function schedulerFields(sched, chosen, { column = 1 } = {}) {
  const queueField = sched
    ? { name: 'queue_name', type: 'select', label: 'Queue / partition', column,
      options: [{ value: '', label: 'scheduler default' },
        ...Object.values(sched.queues).sort((a, b) => String(a.name).localeCompare(String(b.name)))
          .map((q) => ({ value: q.name, label: queueLabel(q) }))],
      matches: ['queue', 'partition'] }
    : { name: 'queue_name', label: 'Queue / partition', placeholder: 'optional', column, matches: ['queue', 'partition'] };
  const accountField = sched && sched.accounts.length
    ? { name: 'account', type: 'select', label: 'Account / project', column,
      options: [{ value: '', label: 'default account' }, ...sched.accounts.map((a) => ({ value: a, label: a }))],
      matches: ['account', 'project'] }
    : { name: 'account', label: 'Account / project', placeholder: 'optional', column, matches: ['account', 'project'] };
  return [queueField, accountField,
    { name: 'duration', label: 'Duration (seconds or HH:MM:SS)', placeholder: 'e.g. 600', column,
      matches: ['duration', 'walltime', 'time limit'],
      validate: (v) => {
        const secs = parseDuration(v);
        if (secs === null) return null;
        if (Number.isNaN(secs)) return 'use seconds (600) or HH:MM:SS (0:10:00)';
        if (secs <= 0) return 'the duration must be positive';
        const limit = limitSeconds(chosen());
        if (limit && secs > limit) return `the queue allows at most ${fmtDuration(limit)}`;
        return null;
      } },
    { name: 'node_count', type: 'number', label: 'Nodes', placeholder: 'e.g. 1', column,
      matches: ['node_count', 'nodes'],
      validate: (v) => {
        if (v === null || v === undefined || v === '') return null;
        if (!Number.isInteger(v) || v < 1) return 'a whole number of nodes, at least 1';
        const q = chosen();
        if (q && q.nodes_total && v > q.nodes_total) return `the queue has ${q.nodes_total} node${q.nodes_total === 1 ? '' : 's'}`;
        return null;
      } },
  ];
}

// Keep the limit hints beside duration and nodes in step with the chosen queue.
export function wireLimits(form, sched) {
  const { queue_name: queue, duration, node_count: nodes } = form.fields;
  if (!queue || !duration || !nodes) return () => null;
  const chosen = () => {
    if (!sched) return null;
    const name = queue.get();
    return name ? sched.queues[name] : Object.values(sched.queues).find((q) => q.default) || null;
  };
  const show = () => {
    const q = chosen();
    const limit = limitSeconds(q);
    duration.setHint(q ? `${q.name}: ${limit ? `at most ${fmtDuration(limit)}` : 'no time limit'}` : '');
    const n = q ? q.nodes_total : null;
    nodes.setHint(q ? `${q.name}: ${n ?? '?'} node${n === 1 ? '' : 's'}, ${q.nodes_idle ?? '?'} idle`
      + `${q.cpus_per_node ? `, ${q.cpus_per_node} CPUs` : ''}${q.gpus_per_node ? `, ${q.gpus_per_node} GPUs` : ''} per node` : '');
    if (duration.error()) duration.input.dispatchEvent(new Event('change'));
    if (nodes.error()) nodes.input.dispatchEvent(new Event('change'));
  };
  queue.input.addEventListener('change', show);
  show();
  return chosen;
}
