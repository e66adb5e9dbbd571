// rhapsody: a session on the chosen backend (ready/failed via `session_status`), a submit
// form, a task table kept live by `task_status` / `task_status_batch`, task detail
// (stdout, stderr, return value, error) whose output streams while the task runs
// (`task_output`), and cancel. Switching the backend opens a new session after a warning;
// the tasks of earlier sessions stay listed (and keep updating).
import { h, add, replace, badge, kvList, card, button, fmtValue } from './dom.js';
import { buildForm, splitArgs } from './forms.js';
import { LiveTable, OutputPane, isTerminal } from './livetable.js';
import { pluginHeader } from './pages.js';
import { confirmDialog, toast } from './ui.js';
import { get } from './api.js';

const READY_TIMEOUT_MS = 120000;

const FALLBACK_FORM = {
  id: 'submit', title: '📝 Submit task', layout: 'single',
  fields: [
    { name: 'exec', label: 'Executable', default: '/bin/echo' },
    { name: 'args', label: 'Arguments (space-separated)', default: 'hello from rhapsody' },
    { name: 'backends', type: 'select', label: 'Backend', options: ['concurrent'] },
    { name: 'timeout', type: 'number', label: 'Timeout (s)' },
    { name: 'ranks', type: 'number', label: 'MPI ranks' },
    { name: 'type', type: 'select', label: 'Task type', options: ['', 'mpi'] },
    { name: 'cwd', label: 'Working dir' },
  ],
  submit: { label: '▶ Submit task' },
};

// `verb/{sid}/{uid}` of a task: its own session for tasks of other sessions (same identity)
const taskPath = (verb, t) => (t && t.sid ? `${verb}/${encodeURIComponent(t.sid)}/{uid}` : `${verb}/{sid}/{uid}`);

let counter = 0;
const newUid = () => `task.${Date.now().toString(36)}.${(counter += 1)}`;

// Form values -> one task dict.
export function taskFrom(v) {
  const task = { uid: newUid(), executable: String(v.exec || '').trim(), arguments: splitArgs(v.args) };
  if (v.timeout) task.timeout = Number(v.timeout);
  if (v.ranks) task.ranks = Number(v.ranks);
  if (v.type) task.type = v.type;
  if (v.cwd && String(v.cwd).trim()) task.cwd = String(v.cwd).trim();
  return task;
}

export default async function mount(ctx) {
  const api = ctx.api;
  const ui = (ctx.info && ctx.info.ui_config) || {};
  const formSpec = (Array.isArray(ui.forms) && ui.forms.find((f) => f && f.id === 'submit')) || FALLBACK_FORM;
  const backendField = (formSpec.fields || []).find((f) => f.name === 'backends');
  const firstBackend = backendField && backendField.options && backendField.options.length ? String(backendField.options[0]) : 'concurrent';

  // ---- session -------------------------------------------------------------------------------
  const session = { sid: null, status: 'none', backends: [], error: null, waiters: [] };
  const mySids = new Set();  // this page's sessions: the current one and earlier backends'
  const othersSids = new Set();  // sessions of this identity's other tabs/scripts (My work)
  const sessionLine = h('p', { class: 'muted session-line', dataset: { testid: 'rh-session' } });
  const showSession = () => replace(sessionLine, 'Session ', h('code', {}, session.sid || '—'), ' ',
    badge(session.status, 'session-state'), session.backends.length ? ` on ${session.backends.join(', ')}` : '',
    session.error ? ` — ${session.error}` : '');
  const setStatus = (ans) => {
    Object.assign(session, { status: ans.status || session.status, error: ans.error || null,
      backends: Array.isArray(ans.backends) ? ans.backends : session.backends });
    showSession();
    if (session.status === 'ready' || session.status === 'failed') session.waiters.splice(0).forEach((w) => w());
  };
  const waitReady = () => new Promise((resolve, reject) => {
    const done = () => (session.status === 'ready' ? resolve() : reject(new Error(`session ${session.status}: ${session.error || ''}`)));
    if (session.status === 'ready' || session.status === 'failed') { done(); return; }
    session.waiters.push(done);
    const poll = async (left) => {  // in case the notification was missed
      if (session.status === 'ready' || session.status === 'failed') return;
      try { setStatus(await api.get('session_status/{sid}', { quiet: true })); } catch (e) { /* keep waiting */ }
      if (left > 0) setTimeout(() => poll(left - 1000), 1000);
      else if (session.status !== 'ready') { session.status = 'failed'; session.error = 'timed out'; done(); }
    };
    setTimeout(() => poll(READY_TIMEOUT_MS), 1000);
  });
  api.onNewSession = (sid, ans) => {
    session.sid = sid;
    mySids.add(sid);
    session.backends = [];
    setStatus({ status: ans.status || 'initializing', backends: ans.backends || (api.sessionArgs || {}).backends || [] });
  };
  const openSession = async (backend) => {
    api.sessionArgs = { backends: [backend] };
    api.forgetSession();  // the old session's tasks stay in the table and keep updating
    await api.newSession();
    await waitReady();
  };
  const ensureSession = async (backend) => {
    const switching = backend && session.sid && session.backends.length && !session.backends.includes(backend);
    if (switching && tasks.size) {
      const open = tasks.all().filter((t) => !isTerminal(t.state)).length;
      const ok = await confirmDialog({ title: `Switch to backend '${backend}'?`,
        message: `A new rhapsody session starts on '${backend}'. The ${tasks.size} task(s) of the current session on '${session.backends.join(', ')}'${open ? ` (${open} still running)` : ''} keep running and stay in the list below.`,
        confirmLabel: 'Switch backend', danger: false });
      if (!ok) throw new Error('backend switch canceled');
    }
    if (!session.sid || session.status === 'failed' || switching) {
      await openSession(backend || firstBackend);
    } else {
      await waitReady();
    }
  };

  // ---- detail -------------------------------------------------------------------------------
  const detail = h('div', { class: 'task-detail', dataset: { testid: 'task-detail' } },
    h('p', { class: 'empty' }, 'Select a task to see its output.'));
  let selectedUid = null;
  const out = new OutputPane('stdout', 'stdout');
  const err = new OutputPane('stderr', 'stderr');
  const partialOutput = (d) => {  // a running task's new output: append where it belongs
    if (d.uid !== selectedUid) return;
    const pane = d.stream === 'stderr' ? err : out;
    const data = String(d.data || '');
    const offset = Number(d.offset) || 0;
    if (offset > pane.length) { fetchDetail(d.uid); return; }  // missed a piece: re-read
    if (offset + data.length > pane.length) pane.append(data.slice(pane.length - offset));
  };
  const renderDetail = (t) => {
    replace(detail,
      h('div', { class: 'detail-head' }, h('h3', {}, `Task ${t.uid} `, badge(t.state)),
        isTerminal(t.state) ? null : button('✕ Cancel', () => cancelTask(t), { style: 'danger', testid: 'detail-cancel', needsBridge: true })),
      kvList([['Command', [t.executable, ...(t.arguments || [])].filter(Boolean).join(' ')], ['Exit code', t.exit_code],
        ['Return value', t.return_value], ['Error', t.error], ['Exception', t.exception]]
        .filter(([, v]) => v !== undefined && v !== null && v !== '')),
      out.el, err.el);
    out.set(t.stdout || '');
    err.set(t.stderr || '');
  };
  const fetchDetail = async (uid) => {
    try {
      const t = await api.get(taskPath('task', tasks.get(uid)), { values: { uid }, quiet: true });
      const rec = tasks.upsert(t) || t;
      if (selectedUid === uid) renderDetail(rec);
    } catch (e) {
      const rec = tasks.get(uid);
      if (rec && selectedUid === uid) renderDetail(rec);
    }
  };

  const cancelTask = async (t) => {
    const ok = await confirmDialog({ title: `Cancel task ${t.uid}?`, message: 'The task will be canceled.', confirmLabel: 'Cancel task' });
    if (!ok) return;
    try {
      const ans = await api.post(taskPath('cancel', tasks.get(t.uid) || t), undefined, { values: { uid: t.uid } });
      tasks.upsert({ uid: t.uid, state: ans.state || 'CANCELED' });
      toast(`Task ${t.uid}: ${ans.canceled ? 'canceled' : `already ${fmtValue(ans.state)}`}.`, 'success');
      if (selectedUid === t.uid) fetchDetail(t.uid);
    } catch (e) { /* toast shown */ }
  };

  // ---- task table ---------------------------------------------------------------------------
  const tasks = new LiveTable({
    idField: 'uid',
    empty: formSpec.empty_text || 'No tasks submitted yet.',
    testid: 'rh-tasks',
    onSelect: (t) => { selectedUid = t.uid; renderDetail(t); fetchDetail(t.uid); },
    columns: [
      { label: 'Task', get: (t) => h('span', {}, h('code', {}, t.uid),
        // notifications carry every task's sid, this page's sessions' too: only others' are marked
        t.sid && !mySids.has(t.sid) ? h('small', { class: 'muted', title: `session ${t.sid}`, dataset: { testid: 'other-session' } }, ' other session') : null) },
      { label: 'State', get: (t) => badge(t.state) },
      { label: 'Exit', get: (t) => t.exit_code },
      { label: 'Backend', get: (t) => t.backend || '—' },
      { label: 'Command', class: 'cmd', get: (t) => [t.executable, ...(t.arguments || [])].filter(Boolean).join(' ') || '—' },
    ],
    actions: (t) => (isTerminal(t.state) ? [] : [button('✕', () => cancelTask(t), { style: 'danger', title: 'cancel', testid: 'row-cancel', needsBridge: true })]),
  });

  const onRecords = (records) => records.forEach((r) => {
    if (!r || !r.uid) return;
    tasks.upsert(r);
    if (r.uid === selectedUid) {
      if (r.stdout_truncated || r.stderr_truncated) fetchDetail(r.uid); else renderDetail(tasks.get(r.uid));
    }
  });
  ctx.onDispose(ctx.events.onNotification({ edge: ctx.edge, plugin: ctx.plugin }, (d, note) => {
    if (d.sid && !mySids.has(d.sid) && !othersSids.has(d.sid)) return;
    if (note.topic === 'session_status') { if (d.sid === session.sid) setStatus(d); } else if (note.topic === 'task_output') partialOutput(d);
    else if (note.topic === 'task_status') onRecords([d]);
    else if (note.topic === 'task_status_batch') onRecords(Array.isArray(d.tasks) ? d.tasks : []);
  }));

  // the identity's tasks on this edge from other sessions and tabs (the bridge's work index)
  const loadOthers = async () => {
    try {
      const ans = await get('work', { query: { edge: ctx.edge, kind: 'rhapsody', limit: 200 }, quiet: true });
      ((ans && ans.items) || []).filter((i) => i.plugin === ctx.plugin && !mySids.has(i.sid)).forEach((i) => {
        if (tasks.get(i.id) && !tasks.get(i.id).sid) return;
        othersSids.add(i.sid);
        tasks.upsert({ uid: i.id, sid: i.sid, state: i.state, exit_code: i.exit_code, executable: i.name, arguments: [] });
      });
    } catch (e) { /* an older bridge without /work */ }
  };

  const loadTasks = async () => {
    if (!session.sid || session.status !== 'ready') return;
    const backend = session.backends.join(', ');
    try {
      const ans = await api.get('list_tasks/{sid}', { quiet: true });
      onRecords((ans && Array.isArray(ans.tasks) ? ans.tasks : []).map((t) => ({ backend, ...t })));
    } catch (e) { /* e.g. 409 while initializing */ }
  };
  ctx.onDispose(ctx.events.on('open', ({ reconnected }) => { if (reconnected) loadTasks(); }));

  // ---- submit -------------------------------------------------------------------------------
  // checks at the field (the plugin's ui_config form is data; the checks live here)
  const CHECKS = {
    exec: (v) => (String(v || '').trim() ? null : 'an executable is required'),
    timeout: (v) => (v === null || v === '' || (Number.isFinite(v) && v > 0) ? null : 'a positive number of seconds'),
    ranks: (v) => (v === null || v === '' || (Number.isInteger(v) && v >= 1) ? null : 'a whole number, at least 1'),
  };
  const fields = (formSpec.fields || []).map((f) => (CHECKS[f.name] ? { ...f, validate: CHECKS[f.name] } : f));
  const form = buildForm({ ...formSpec, fields, errorTitle: 'Not submitted:', submit: formSpec.submit || FALLBACK_FORM.submit }, async (v) => {
    const task = taskFrom(v);
    try { await ensureSession(v.backends); } catch (e) {
      if (String(e.message).includes('switch canceled')) return;
      throw new Error(`rhapsody session: ${e.message}`);
    }
    const backend = (session.backends || []).join(', ') || v.backends || firstBackend;
    tasks.upsert({ ...task, state: null, backend });
    const ans = await api.post('submit/{sid}', { tasks: [task] }, { quiet: true });
    (Array.isArray(ans) ? ans : []).forEach((r) => onRecords([{ ...task, ...r }]));
    tasks.select(task.uid);
  });
  const cancelAll = button('✕ Cancel all', async () => {
    if (!session.sid || !(await confirmDialog({ title: 'Cancel all tasks?', message: 'Every unfinished task of this session will be canceled.', confirmLabel: 'Cancel all' }))) return;
    try {
      const ans = await api.post('cancel_all/{sid}');
      toast(`${fmtValue(ans.canceled)} task(s) canceled.`, 'success');
      loadTasks();
    } catch (e) { /* toast shown */ }
  }, { style: 'danger', testid: 'cancel-all', needsBridge: true });

  add(ctx.el,
    pluginHeader(ctx, { onRefresh: () => { loadTasks(); loadOthers(); }, extra: cancelAll }),
    sessionLine,
    h('div', { class: 'two-col' },
      h('div', {}, card(null, form.el)),
      h('div', {}, card('📊 Tasks', tasks.el), card(null, detail))));

  // resume the tab's session if the edge still has it, else open one on the first backend
  showSession();
  api.sessionArgs = { backends: [firstBackend] };
  try {
    const kept = await api.sid();
    session.sid = kept;
    mySids.add(kept);
    setStatus(await api.get('session_status/{sid}', { quiet: true }));
    if (session.backends.length && form.fields.backends) form.fields.backends.set(session.backends[0]);
    await waitReady();
    await loadTasks();
  } catch (e) {
    try { await openSession(form.fields.backends ? form.fields.backends.get() || firstBackend : firstBackend); } catch (e2) { /* shown in the session line */ }
  }
  await loadOthers();
}
