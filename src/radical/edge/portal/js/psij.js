// psij: submit a batch job (executor, queue, account, duration, nodes, environment, custom
// attributes), a job table kept live by `job_status` notifications, a job detail that
// streams stdout/stderr by byte offset, cancel, and launching a child edge (launch.js).
import { h, add, replace, badge, kvList, card, button, fmtTime } from './dom.js';
import { buildForm } from './forms.js';
import { LiveTable, OutputPane, isTerminal } from './livetable.js';
import { pluginHeader } from './pages.js';
import { confirmDialog, toast } from './ui.js';
import { get } from './api.js';
import { launchCard, jobSpec } from './launch.js';
import { browseHref } from './staging.js';
import { schedulerInfo, schedulerFields, wireLimits } from './jobform.js';

const POLL_MS = 1000;

function submitSpec(executors, dflt, sched, chosen) {
  return {
    id: 'submit',
    title: '📝 Submit job',
    layout: 'grid2',
    errorTitle: 'Not submitted:',
    fields: [
      { name: 'executable', label: 'Executable', default: '/bin/echo', required: true, column: 0,
        matches: ['executable'], validate: (v) => (String(v || '').trim() ? null : 'an executable is required') },
      { name: 'arguments', label: 'Arguments (space-separated, quotes allowed)', default: 'hello from psij', column: 0, matches: ['arguments'] },
      { name: 'directory', label: 'Working directory', placeholder: 'default: home directory', column: 0, matches: ['directory'] },
      { name: 'environment', type: 'environment', label: 'Environment', column: 0, matches: ['environment'] },
      { name: 'executor', type: 'select', label: 'Executor', options: executors, default: dflt, column: 1, matches: ['executor'] },
      ...schedulerFields(sched, chosen),
      { name: 'custom', type: 'custom_attributes', label: 'Custom attributes (scheduler.option)', column: 1, matches: ['custom attribute'] },
    ],
    submit: { label: '🚀 Submit job' },
  };
}

// `verb/{sid}/{job_id}` of a job: its own session's id for jobs from other sessions (same
// identity: sessions belong to their creator, not to a tab), else this page's session.
const jobPath = (verb, job) => (job && job.sid
  ? `${verb}/${encodeURIComponent(job.sid)}/{job_id}` : `${verb}/{sid}/{job_id}`);

const short = (id) => (String(id).length > 14 ? `${String(id).slice(0, 12)}…` : String(id));

export default async function mount(ctx) {
  const api = ctx.api;
  let alive = true;
  ctx.onDispose(() => { alive = false; });

  // only executors the edge can use (the plugin says which others it lacks, and why)
  let executors = ['local'];
  let dflt = 'local';
  let unavailable = {};
  const [ex, sched] = await Promise.all([
    api.get('executors', { quiet: true }).catch(() => null),
    schedulerInfo(ctx),
  ]);
  if (ex && Array.isArray(ex.executors) && ex.executors.length) executors = ex.executors;
  if (ex && ex.default && executors.includes(ex.default)) dflt = ex.default;
  if (ex && ex.unavailable && typeof ex.unavailable === 'object') unavailable = ex.unavailable;

  // ---- detail with output streaming -------------------------------------------------------
  const detail = h('div', { class: 'job-detail', dataset: { testid: 'job-detail' } },
    h('p', { class: 'empty' }, 'Select a job to see its details and output.'));
  let stream = null;  // {jobId, out, err, wake}

  const cancelJob = async (job) => {
    const ok = await confirmDialog({ title: `Cancel job ${short(job.job_id)}?`,
      message: `Job ${job.job_id} (${job.native_id || 'not yet queued'}) will be canceled.`, confirmLabel: 'Cancel job' });
    if (!ok) return;
    try {
      const ans = await api.post(jobPath('cancel', jobs.get(job.job_id) || job), undefined, { values: { job_id: job.job_id } });
      jobs.upsert({ job_id: job.job_id, state: ans.state || 'CANCELED' });
      toast(`Job ${short(job.job_id)} canceled.`, 'success');
      if (stream && stream.jobId === job.job_id) stream.wake();
    } catch (e) { /* toast shown */ }
  };

  // Paths on this edge become links into its file browser when it runs the staging plugin.
  const stagingPlugin = () => {
    const edge = (ctx.topology() || {}).edges ? ctx.topology().edges[ctx.edge] : null;
    const plugins = (edge && edge.plugins) || {};
    return Object.keys(plugins).find((p) => (plugins[p] || {}).type === 'staging') || null;
  };
  const browse = (path, isDir) => {
    if (!path || !stagingPlugin()) return path;
    const dir = isDir ? path : String(path).replace(/\/[^/]*$/, '') || '/';
    return h('a', { href: browseHref(ctx.edge, dir, stagingPlugin()), dataset: { testid: 'browse-link' },
      title: `browse ${dir} on ${ctx.edge}` }, `📁 ${path}`);
  };

  const showDetail = (job) => {
    if (stream && stream.jobId === job.job_id) return;
    if (stream) stream.stop();
    const out = new OutputPane('stdout', 'stdout');
    const err = new OutputPane('stderr', 'stderr');
    const head = h('div', { class: 'detail-head' });
    const facts = h('div');
    replace(detail, head, facts, out.el, err.el);
    const render = (rec) => {
      replace(head, h('h3', {}, `Job ${short(rec.job_id)} `, badge(rec.state)),
        isTerminal(rec.state) ? null : button('✕ Cancel', () => cancelJob(rec), { style: 'danger', testid: 'detail-cancel', needsBridge: true }));
      replace(facts, kvList([
        ['Job ID', rec.job_id], ['Native ID', rec.native_id], ['Executor', rec.executor],
        ['Submitted', rec.submitted ? fmtTime(rec.submitted) : null],
        ['Command', [rec.executable, ...(rec.arguments || [])].filter(Boolean).join(' ')],
        ['Directory', browse(rec.directory, true)], ['Stdout', browse(rec.stdout_path, false)],
        ['Stderr', browse(rec.stderr_path, false)], ['Queue', rec.queue_name], ['Account', rec.account],
        ['Nodes', rec.node_count], ['Duration', rec.duration], ['Exit code', rec.exit_code],
        ['Message', rec.message], ['Child edge', rec.edge_name],
      ].filter(([, v]) => v !== undefined && v !== null && v !== '')));
    };
    render(job);
    const s = { jobId: job.job_id, out: 0, err: 0, stopped: false, timer: null, resolve: null };
    s.wake = () => { if (s.resolve) s.resolve(); };
    s.stop = () => { s.stopped = true; s.wake(); };
    stream = s;
    (async () => {
      let finalReads = 0;
      while (alive && !s.stopped) {
        let st;
        try {
          st = await api.get(jobPath('status', jobs.get(s.jobId)), { values: { job_id: s.jobId }, query: { stdout_offset: s.out, stderr_offset: s.err }, quiet: true });
        } catch (e) {
          if (e.status === 404) { replace(facts, h('p', { class: 'error-box' }, e.detail)); return; }
          st = null;
        }
        if (st && !s.stopped) {
          out.append(st.stdout);
          err.append(st.stderr);
          s.out = st.stdout_offset ?? s.out;
          s.err = st.stderr_offset ?? s.err;
          const { stdout, stderr, stdout_offset: a, stderr_offset: b, ...rest } = st;
          render(jobs.upsert(rest) || rest);
          if (isTerminal(st.state)) {
            if (!st.stdout && !st.stderr) return;  // everything read
            finalReads += 1;
            if (finalReads > 50) return;
            continue;
          }
        }
        await new Promise((r) => { s.resolve = r; s.timer = setTimeout(r, POLL_MS); });
        clearTimeout(s.timer);
        s.resolve = null;
      }
    })();
  };
  ctx.onDispose(() => { if (stream) stream.stop(); });

  // ---- job table ---------------------------------------------------------------------------
  const jobs = new LiveTable({
    idField: 'job_id',
    empty: 'No jobs on this edge yet (all your jobs, on every edge: My work in the top bar).',
    testid: 'psij-jobs',
    onSelect: showDetail,
    columns: [
      { label: 'Job', get: (j) => h('span', {}, h('code', { title: j.job_id }, short(j.job_id)),
        // notifications carry every job's sid, this page's session's too: only others' are marked
        j.sid && j.sid !== api._sid ? h('small', { class: 'muted', title: `session ${j.sid}`, dataset: { testid: 'other-session' } }, ' other session') : null) },
      { label: 'State', get: (j) => badge(j.state) },
      { label: 'Exit', get: (j) => j.exit_code },
      { label: 'Native ID', get: (j) => j.native_id },
      { label: 'Command', class: 'cmd', get: (j) => [j.executable, ...(j.arguments || [])].filter(Boolean).join(' ') || '—' },
    ],
    actions: (j) => {
      const dir = j.directory || (j.stdout_path && String(j.stdout_path).replace(/\/[^/]*$/, ''));
      const files = dir && stagingPlugin() ? h('a', { class: 'btn btn-small', href: browseHref(ctx.edge, dir, stagingPlugin()),
        title: `browse ${dir}`, dataset: { testid: 'row-files' } }, '📁') : null;
      return [files, isTerminal(j.state) ? null : button('✕', () => cancelJob(j), { style: 'danger', title: 'cancel', testid: 'row-cancel', needsBridge: true })];
    },
  });

  // the identity's jobs on this edge from other sessions and tabs (the bridge's work index)
  const loadOthers = async () => {
    try {
      const ans = await get('work', { query: { edge: ctx.edge, kind: 'psij', limit: 200 }, quiet: true });
      ((ans && ans.items) || []).filter((i) => i.plugin === ctx.plugin && i.sid !== api._sid).forEach((i) => {
        const own = jobs.get(i.id);
        if (own && !own.sid) return;  // this session's: its own record is richer
        jobs.upsert({ job_id: i.id, sid: i.sid, native_id: i.native_id, state: i.state, exit_code: i.exit_code,
          executor: i.executor, directory: i.directory, stdout_path: i.stdout_path, stderr_path: i.stderr_path,
          queue_name: i.queue, account: i.account, submitted: i.submitted, executable: i.name, arguments: [] });
      });
    } catch (e) { /* an older bridge without /work: this session's jobs only */ }
  };

  const loadJobs = async () => {
    try {
      const ans = await api.get('list_jobs/{sid}', { quiet: true });
      (ans && Array.isArray(ans.jobs) ? ans.jobs : []).forEach((j) => jobs.upsert(j));
    } catch (e) { /* shown elsewhere */ }
  };

  ctx.onDispose(ctx.events.onNotification({ edge: ctx.edge, plugin: ctx.plugin, topic: 'job_status' }, (d) => {
    if (!d || !d.job_id || (d.sid && d.sid !== api._sid && !jobs.get(d.job_id))) return;
    const { stdout, stderr, ...rest } = d;
    jobs.upsert(rest);
    if (stream && stream.jobId === d.job_id) stream.wake();
  }));
  ctx.onDispose(ctx.events.on('open', ({ reconnected }) => { if (reconnected) { loadJobs(); loadOthers(); } }));

  // ---- submit form ---------------------------------------------------------------------------
  const result = h('div', { class: 'form-result' });
  let chosen = () => null;
  const form = buildForm(submitSpec(executors, dflt, sched, () => chosen()), async (values) => {
    const body = jobSpec(values);
    replace(result);
    const ans = await api.post('submit/{sid}', body, { quiet: true });
    const rec = jobs.upsert({ ...ans, executable: body.job_spec.executable, arguments: body.job_spec.arguments,
      submitted: ans.submitted || Date.now() / 1000, state: ans.state || 'NEW' });
    replace(result, h('p', { class: 'banner banner-ok' }, `Submitted job ${ans.job_id}${ans.native_id ? ` (native id ${ans.native_id})` : ''}.`));
    jobs.select(rec.job_id);
  });

  chosen = wireLimits(form, sched);
  const missing = Object.entries(unavailable);
  if (missing.length) {
    const why = (text) => { const m = /'([^']+)'/.exec(String(text)); return m ? `no ${m[1]}` : String(text); };
    form.fields.executor.setHint(`not on this edge: ${missing.map(([n, w]) => `${n} (${why(w)})`).join(', ')}`);
  }

  const launch = launchCard(ctx, { executors, dflt, sched, onJob: (rec) => jobs.upsert(rec) });

  add(ctx.el,
    pluginHeader(ctx, { onRefresh: () => { loadJobs(); loadOthers(); } }),
    h('div', { class: 'two-col' },
      h('div', {}, card(null, form.el, result), launch),
      h('div', {},
        card('📊 Jobs', jobs.el),
        card(null, detail))));
  await loadJobs();
  await loadOthers();
}
