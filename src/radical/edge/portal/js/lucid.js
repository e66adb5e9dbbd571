// lucid: RADICAL-Pilot on an edge. A pilot form and pilot table, a task form and a task
// table kept live by `task_status`/`pilot_status` notifications, a task detail with its
// stdout/stderr once final, and cancel.
import { h, add, replace, badge, kvList, card, button } from './dom.js';
import { buildForm, splitArgs } from './forms.js';
import { LiveTable, isTerminal } from './livetable.js';
import { pluginHeader } from './pages.js';
import { confirmDialog, toast } from './ui.js';

const PILOT_FORM = {
  id: 'pilot',
  title: '🛩️ Start a pilot',
  fields: [
    { name: 'resource', label: 'Resource', default: 'local.localhost', required: true, matches: ['resource'] },
    { name: 'cores', type: 'number', label: 'Cores', default: '2' },
    { name: 'runtime', type: 'number', label: 'Runtime (minutes)', default: '30' },
    // batch resources (e.g. edge.slurm, the edge's own scheduler): where the pilot job goes
    { name: 'queue', label: 'Queue / partition (batch resources)', placeholder: 'default', matches: ['queue', 'partition'] },
    { name: 'project', label: 'Project / account (batch resources)', placeholder: 'none', matches: ['project', 'account'] },
  ],
  submit: { label: '🛩️ Submit pilot' },
  errorTitle: 'Pilot not started:',
};

const TASK_FORM = {
  id: 'task',
  title: '📝 Submit a task',
  fields: [
    { name: 'executable', label: 'Executable', default: '/bin/echo', required: true, matches: ['executable'],
      validate: (v) => (String(v || '').trim() ? null : 'an executable is required') },
    { name: 'arguments', label: 'Arguments (space-separated, quotes allowed)', default: 'hello from a pilot' },
    { name: 'ranks', type: 'number', label: 'Ranks', placeholder: '1' },
  ],
  submit: { label: '🚀 Submit task' },
  errorTitle: 'Task not submitted:',
};

const int = (v) => (v === '' || v === undefined || v === null ? undefined : Number(v));

export default async function mount(ctx) {
  const api = ctx.api;

  // ---- pilots ------------------------------------------------------------------------------
  const pilots = new LiveTable({
    idField: 'pid', empty: 'No pilot yet: start one to run tasks.', testid: 'lucid-pilots',
    columns: [
      { label: 'Pilot', get: (p) => h('code', {}, p.pid) },
      { label: 'State', get: (p) => badge(p.state) },
      { label: 'Resource', get: (p) => p.resource },
      { label: 'Cores', get: (p) => p.cores },
    ],
  });
  const pilotForm = buildForm(PILOT_FORM, async (v) => {
    const description = { resource: String(v.resource || '').trim() || 'local.localhost' };
    if (int(v.cores)) description.cores = int(v.cores);
    if (int(v.runtime)) description.runtime = int(v.runtime);
    for (const key of ['queue', 'project']) {
      const text = String(v[key] || '').trim();
      if (text) description[key] = text;
    }
    // quiet: a refusal is shown once, in the form and at its field (buildForm)
    const ans = await api.post('pilot_submit/{sid}', { description }, { quiet: true });
    pilots.upsert({ pid: ans.pid, state: 'NEW', ...description });
    toast(`Pilot ${ans.pid} submitted.`, 'success');
  });

  // ---- task detail -------------------------------------------------------------------------
  const detail = h('div', { class: 'job-detail', dataset: { testid: 'task-detail' } },
    h('p', { class: 'empty' }, 'Select a task to see its details and output.'));
  let shown = null;
  const renderDetail = (t) => {
    shown = t.tid;
    replace(detail,
      h('div', { class: 'detail-head' }, h('h3', {}, `Task ${t.tid} `, badge(t.state)),
        isTerminal(t.state) ? null : button('✕ Cancel', () => cancelTask(t), { style: 'danger', testid: 'detail-cancel', needsBridge: true })),
      kvList([['Command', [t.executable, ...(t.arguments || [])].filter(Boolean).join(' ')],
        ['Pilot', t.pilot], ['Exit code', t.exit_code]].filter(([, x]) => x !== undefined && x !== null && x !== '')),
      t.stdout ? h('div', {}, h('h4', {}, 'stdout'), h('pre', { class: 'output', dataset: { testid: 'stdout' } }, t.stdout)) : null,
      t.stderr ? h('div', {}, h('h4', {}, 'stderr'), h('pre', { class: 'output', dataset: { testid: 'stderr' } }, t.stderr)) : null);
  };
  const showTask = async (t) => {
    renderDetail(t);
    try {
      const ans = await api.get('task_wait/{sid}/{tid}', { values: { tid: t.tid }, query: { timeout: 0 }, quiet: true });
      if (ans && ans.task && shown === t.tid) renderDetail(tasks.upsert(ans.task) || ans.task);
    } catch (e) { /* gone: keep what we have */ }
  };

  // ---- tasks -------------------------------------------------------------------------------
  const cancelTask = async (t) => {
    const ok = await confirmDialog({ title: `Cancel task ${t.tid}?`, message: `Task ${t.tid} will be canceled.`, confirmLabel: 'Cancel task' });
    if (!ok) return;
    try {
      await api.post('task_cancel/{sid}/{tid}', undefined, { values: { tid: t.tid } });
      toast(`Task ${t.tid} canceled.`, 'success');
    } catch (e) { /* toast shown */ }
  };
  const tasks = new LiveTable({
    idField: 'tid', empty: 'No tasks submitted in this session yet.', testid: 'lucid-tasks',
    onSelect: showTask,
    columns: [
      { label: 'Task', get: (t) => h('code', {}, t.tid) },
      { label: 'State', get: (t) => badge(t.state) },
      { label: 'Exit', get: (t) => t.exit_code },
      { label: 'Command', class: 'cmd', get: (t) => [t.executable, ...(t.arguments || [])].filter(Boolean).join(' ') || '—' },
      { label: 'Output', class: 'cmd', get: (t) => (t.stdout ? String(t.stdout).trim().slice(0, 80) : '') },
    ],
    actions: (t) => (isTerminal(t.state) ? [] : [button('✕', () => cancelTask(t), { style: 'danger', title: 'cancel', testid: 'row-cancel', needsBridge: true })]),
  });
  const taskForm = buildForm(TASK_FORM, async (v) => {
    const description = { executable: String(v.executable || '').trim(), arguments: splitArgs(v.arguments) };
    if (int(v.ranks)) description.ranks = int(v.ranks);
    const ans = await api.post('task_submit/{sid}', { description }, { quiet: true });
    tasks.upsert({ tid: ans.tid, state: 'NEW', ...description });
  });

  const load = async () => {
    try {
      const [p, t] = await Promise.all([api.get('pilot_status/{sid}', { quiet: true }), api.get('task_list/{sid}', { quiet: true })]);
      ((p && p.pilots) || []).forEach((x) => pilots.upsert(x));
      ((t && t.tasks) || []).forEach((x) => tasks.upsert(x));
    } catch (e) { /* shown elsewhere */ }
  };

  const mine = (d) => d && (!d.sid || d.sid === api._sid);
  ctx.onDispose(ctx.events.onNotification({ edge: ctx.edge, plugin: ctx.plugin, topic: 'task_status' }, (d) => {
    if (!mine(d) || !d.tid) return;
    const rec = tasks.upsert(d);
    if (rec && shown === d.tid) renderDetail(rec);
  }));
  ctx.onDispose(ctx.events.onNotification({ edge: ctx.edge, plugin: ctx.plugin, topic: 'pilot_status' }, (d) => {
    if (mine(d) && d.pid) pilots.upsert(d);
  }));
  ctx.onDispose(ctx.events.on('open', ({ reconnected }) => { if (reconnected) load(); }));

  add(ctx.el,
    pluginHeader(ctx, { onRefresh: load }),
    h('div', { class: 'two-col' },
      h('div', {}, card(null, pilotForm.el), card('🛩️ Pilots', pilots.el), card(null, taskForm.el)),
      h('div', {}, card('📊 Tasks', tasks.el), card(null, detail))));
  await load();
}
