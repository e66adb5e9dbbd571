// xgfabric: multi-cluster CFD-and-AI workflows. A config picker and JSON editor (workflow and
// resource configs: load, save, delete), start/stop, and the run's progress bar, cluster
// status and execution log, all live from `workflow_status` notifications (the whole state).
import { h, add, replace, badge, bar, card, button, kvList, table } from './dom.js';
import { pluginHeader } from './pages.js';
import { confirmDialog, toast } from './ui.js';
import { errorSlot } from './forms.js';

const TERMINAL = new Set(['completed', 'failed']);

function picker(kind, testid) {
  return h('select', { name: kind, dataset: { testid } });
}

function fillPicker(sel, configs, kind, keep) {
  const names = configs.filter((c) => c.kind === kind).map((c) => c.name);
  replace(sel, h('option', { value: '__default__' }, '__default__'),
    names.map((n) => h('option', { value: n }, n)));
  sel.value = names.includes(keep) || keep === '__default__' ? keep : '__default__';
}

// dom.bar colours by load (red near 100 %); a run's progress is coloured by its status
function progressBar(pct, status) {
  const el = bar(pct, `${pct} %`);
  const fill = el.querySelector('.bar-fill');
  fill.classList.remove('ok', 'warn', 'crit');
  fill.classList.add(status === 'failed' ? 'crit' : 'ok');
  return el;
}

export default async function mount(ctx) {
  const api = ctx.api;
  const wfSel = picker('workflow', 'xgf-workflow');
  const resSel = picker('resource', 'xgf-resource');
  const editor = h('textarea', { name: 'config', id: `xgf-editor-${ctx.edge}`, rows: 18, spellcheck: false,
    dataset: { testid: 'xgf-editor' },
    style: { width: '100%', fontFamily: 'var(--mono, monospace)', fontSize: '12px' } });
  const dirText = h('code', { dataset: { testid: 'xgf-workdir' } });
  const statusEl = h('div', { dataset: { testid: 'xgf-status' } });
  const clustersEl = h('div', { dataset: { testid: 'xgf-clusters' } });
  const logEl = h('pre', { class: 'output', dataset: { testid: 'xgf-log' },
    style: { maxHeight: '260px', overflow: 'auto' } });
  let last = null;
  // errors stay beside the buttons that caused them, until dismissed or the next try
  const configErr = errorSlot('xgf-config-error');
  const runErr = errorSlot('xgf-run-error');

  const loadConfigs = async (keepWf = wfSel.value, keepRes = resSel.value) => {
    const list = await api.get('configs/{sid}', { quiet: true });
    fillPicker(wfSel, list || [], 'workflow', keepWf || 'test');
    fillPicker(resSel, list || [], 'resource', keepRes || '__default__');
  };
  const show = async (name) => {
    try {
      configErr.clear();
      const cfg = await api.get('config/{sid}/{name}', { values: { name }, quiet: true });
      delete cfg.builtin;
      editor.value = JSON.stringify(cfg, null, 2);
    } catch (e) { configErr.show(e, `Config '${name}' not loaded:`); }
  };
  const save = async () => {
    let cfg;
    configErr.clear();
    try { cfg = JSON.parse(editor.value); } catch (e) { configErr.show(`The config is not valid JSON: ${e.message}`, 'Not saved:'); return; }
    try {
      const ans = await api.post('config/{sid}', cfg, { quiet: true });
      toast(`Saved ${ans.kind} config '${ans.name}'.`, 'success');
      await loadConfigs(ans.kind === 'workflow' ? ans.name : wfSel.value, ans.kind === 'resource' ? ans.name : resSel.value);
    } catch (e) { configErr.show(e, 'Not saved:'); }
  };
  const remove = async () => {
    let name;
    try { name = JSON.parse(editor.value).name; } catch (e) { name = wfSel.value; }
    if (!name) return;
    const ok = await confirmDialog({ title: `Delete config '${name}'?`, message: `The saved config '${name}' is removed from ${dirText.textContent}.`, confirmLabel: 'Delete' });
    if (!ok) return;
    configErr.clear();
    try {
      await api.post('config/{sid}/{name}/delete', undefined, { values: { name }, quiet: true });
      toast(`Deleted '${name}'.`, 'success');
      await loadConfigs();
    } catch (e) { configErr.show(e, `'${name}' not deleted:`); }
  };
  const start = async () => {
    runErr.clear();
    try {
      render(await api.post('start/{sid}', { workflow: wfSel.value, resource: resSel.value }, { quiet: true }));
      toast(`Workflow '${wfSel.value}' started.`, 'success');
    } catch (e) { runErr.show(e, 'Not started:'); }
  };
  const stop = async () => {
    const ok = await confirmDialog({ title: 'Stop the workflow?', message: 'Running tasks are canceled, batch jobs and child edges released.', confirmLabel: 'Stop' });
    if (!ok) return;
    runErr.clear();
    try {
      const ans = await api.post('stop/{sid}', undefined, { quiet: true });
      const c = ans.cleanup || {};
      toast(`Stopped: ${c.tasks_canceled || 0} task(s) canceled, ${(c.jobs_canceled || []).length} batch job(s) released.`, 'success');
      render(ans.state);
    } catch (e) { runErr.show(e, 'Not stopped:'); }
  };
  const startBtn = button('▶ Start', start, { style: 'primary', testid: 'xgf-start', needsBridge: true });
  const stopBtn = button('■ Stop', stop, { style: 'danger', testid: 'xgf-stop', needsBridge: true });

  function render(s) {
    if (!s) return;
    last = s;
    const running = s.status === 'running';
    startBtn.disabled = running;
    stopBtn.disabled = !running;
    const pct = Number(s.progress) || 0;
    replace(statusEl,
      h('p', {}, badge(s.status), ' ', h('strong', { dataset: { testid: 'xgf-phase' } }, s.phase || '—'),
        s.run_id ? h('span', { class: 'muted' }, ` · run ${s.run_id}`) : null),
      h('div', { dataset: { testid: 'xgf-progress', progress: pct } }, progressBar(pct, s.status)),
      kvList([
        ['Workflow', s.config_name ? `${s.config_name} on ${s.resource_name || '—'}` : '—'],
        ['Simulations', `${s.completed_simulations} / ${s.total_simulations}`],
        ['Batches', `${s.current_batch} / ${s.total_batches}`],
        ['Training', `${s.completed_training || 0} / ${s.total_training || 0}`],
        ['Message', s.message || '—'],
        ...(s.error ? [['Error', h('span', { class: 'error', dataset: { testid: 'xgf-error' } }, s.error)]] : []),
        ...(s.results_file ? [['Results', h('code', {}, s.results_file)]] : []),
        ...(s.cleanup ? [['Released', h('span', { dataset: { testid: 'xgf-cleanup' } },
          `${s.cleanup.tasks_canceled || 0} task(s) canceled, ${(s.cleanup.jobs_canceled || []).length} batch job(s), ${(s.cleanup.edges_stopped || []).length} child edge(s)`)]] : []),
      ]));
    const clusters = [...(s.immediate_clusters || []), ...(s.allocate_clusters || [])];
    replace(clustersEl, table([
      { label: 'Cluster', get: (c) => h('strong', {}, c.name) },
      { label: 'Type', get: (c) => c.cluster_type },
      { label: 'Edge', get: (c) => (c.exec_edge && c.exec_edge !== c.edge_name ? `${c.edge_name} → ${c.exec_edge}` : c.edge_name) },
      { label: 'Online', get: (c) => badge(c.online ? 'ONLINE' : 'OFFLINE') },
      { label: 'Running', get: (c) => c.tasks_running },
      { label: 'Done', get: (c) => c.tasks_done },
      { label: 'Batch job', get: (c) => (c.pilot_job_id ? h('span', {}, `${c.pilot_job_id} `, badge(c.pilot_status)) : '—') },
      { label: 'Note', class: 'cmd', get: (c) => c.error || '' },
    ], clusters, { empty: 'No clusters yet: start a workflow.', rowProps: (c) => ({ dataset: { cluster: c.name, running: c.tasks_running } }) }));
    const atBottom = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 4;
    logEl.textContent = (s.log || []).map((e) => `${e.time}  ${e.level.toUpperCase().padEnd(7)} ${e.message}`).join('\n') || 'No run yet.';
    if (atBottom) logEl.scrollTop = logEl.scrollHeight;
  }

  const load = async () => {
    try {
      const [dir, state] = await Promise.all([api.get('workdir/{sid}', { quiet: true }), api.get('status/{sid}', { quiet: true })]);
      dirText.textContent = dir.path;
      render(state);
      await loadConfigs();
    } catch (e) { /* shown elsewhere */ }
  };

  ctx.onDispose(ctx.events.onNotification({ edge: ctx.edge, plugin: ctx.plugin, topic: 'workflow_status' }, (d) => {
    if (d && d.status) render(d);
  }));
  ctx.onDispose(ctx.events.on('open', ({ reconnected }) => { if (reconnected) load(); }));
  wfSel.addEventListener('change', () => show(wfSel.value));
  resSel.addEventListener('change', () => show(resSel.value));

  add(ctx.el,
    pluginHeader(ctx, { onRefresh: load }),
    h('div', { class: 'two-col' },
      h('div', {},
        card('⚙️ Configuration',
          h('p', { class: 'muted' }, 'Configs in ', dirText),
          h('label', {}, 'Workflow ', wfSel), ' ', h('label', {}, 'Resource ', resSel),
          h('div', { class: 'actions' },
            button('📂 Load workflow', () => show(wfSel.value), { testid: 'xgf-load' }),
            button('📂 Load resource', () => show(resSel.value), { testid: 'xgf-load-resource' })),
          h('label', { for: editor.id }, 'Config (JSON)'),
          editor,
          h('div', { class: 'actions' },
            button('💾 Save', save, { testid: 'xgf-save', needsBridge: true }),
            button('🗑 Delete', remove, { style: 'danger', testid: 'xgf-delete', needsBridge: true })),
          configErr.el),
        card('🚀 Run', h('div', { class: 'actions' }, startBtn, stopBtn), runErr.el)),
      h('div', {},
        card('📈 Progress', statusEl),
        card('🖥️ Clusters', clustersEl),
        card('📜 Execution log', logEl))));
  await load();
  if (!editor.value) await show(wfSel.value);
  if (last === null) render({ status: 'idle', progress: 0, completed_simulations: 0, total_simulations: 0, current_batch: 0, total_batches: 0, log: [] });
}
