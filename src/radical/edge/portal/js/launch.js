// Launch a new edge inside a batch job (psij `submit_tunneled`), optionally reaching Redis
// through an SSH tunnel, and follow it until it shows up in the topology.
import { h, replace, card, badge } from './dom.js';
import { buildForm, splitArgs } from './forms.js';
import { edgeHref } from './tree.js';
import { isTerminal } from './livetable.js';
import { schedulerFields, wireLimits } from './jobform.js';

const WRAPPER = 'radical-edge-wrapper.sh';
const launched = new Set();

// Form values -> {job_spec, executor}.
export function jobSpec(v) {
  const attributes = {};
  for (const k of ['queue_name', 'account', 'duration']) if (v[k] && String(v[k]).trim()) attributes[k] = String(v[k]).trim();
  if (v.node_count) attributes.node_count = Number(v.node_count);
  if (v.custom && Object.keys(v.custom).length) attributes.custom_attributes = v.custom;
  const spec = { executable: String(v.executable || '').trim(), arguments: splitArgs(v.arguments) };
  if (v.directory && v.directory.trim()) spec.directory = v.directory.trim();
  if (v.environment && Object.keys(v.environment).length) spec.environment = v.environment;
  if (Object.keys(attributes).length) spec.attributes = attributes;
  return { job_spec: spec, executor: v.executor || 'local' };
}

// A free child name under this edge: EDGE.1, EDGE.2, ...
function freeName(ctx) {
  const edges = ((ctx.topology() || {}).edges) || {};
  const taken = (n) => edges[n] || launched.has(n);
  for (let i = 1; i < 1000; i += 1) if (!taken(`${ctx.edge}.${i}`)) return `${ctx.edge}.${i}`;
  return `${ctx.edge}.child`;
}

function spec(ctx, executors, dflt, sched, chosen) {
  return {
    id: 'launch',
    title: '🛰️ Launch a new edge as a batch job',
    description: 'Starts radical-edge-wrapper.sh in a job; the new edge joins this bridge when the job runs.',
    layout: 'grid2',
    fields: [
      { name: 'name', label: 'Edge name', default: freeName(ctx), required: true, column: 0,
        matches: ['edge name', 'child edge'],
        validate: (v) => (/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(String(v || '').trim()) ? null
          : "letters, digits, '.', '_' or '-' (starting with a letter or digit)") },
      { name: 'plugins', label: 'Plugins', placeholder: 'all (default) or e.g. sysinfo,psij', column: 0 },
      { name: 'executor', type: 'select', label: 'Executor', options: executors, default: dflt, column: 0 },
      { name: 'tunnel', type: 'checkbox', label: 'Tunnel (reach Redis over SSH from the compute node)', column: 0 },
      ...schedulerFields(sched, chosen),
      { name: 'extra', label: 'Extra wrapper arguments', placeholder: 'optional', column: 1 },
    ],
    submit: { label: '🛰️ Launch edge' },
    errorTitle: 'Not launched:',
  };
}

export function launchCard(ctx, { executors, dflt, onJob, sched = null }) {
  const status = h('div', { class: 'launch-status', dataset: { testid: 'launch-status' } });
  let watch = null;

  const follow = (name, ans) => {
    if (watch) watch();
    const line = h('p', { class: 'banner banner-warn' });
    const say = (...parts) => replace(line, ...parts);
    replace(status, line);
    say(`⏳ Job ${ans.job_id}${ans.native_id ? ` (${ans.native_id})` : ''} submitted; waiting for edge '${name}' to join…`);
    if (ans.warning) status.append(h('p', { class: 'muted' }, `⚠ ${ans.warning}`));
    const check = () => {
      const edges = ((ctx.topology() || {}).edges) || {};
      if (edges[name]) {
        line.className = 'banner banner-ok';
        say('✅ Edge ', h('a', { href: edgeHref(name), dataset: { testid: 'launched-edge' } }, name), ` joined (role ${edges[name].role || '?'}).`);
        stop();
        return true;
      }
      return false;
    };
    const offTopo = ctx.events.on('topology', check);
    const offJob = ctx.events.onNotification({ edge: ctx.edge, plugin: ctx.plugin, topic: 'job_status' }, (d) => {
      if (d.job_id !== ans.job_id || !isTerminal(d.state) || check()) return;
      line.className = 'banner banner-warn';
      say('✖ The job of edge ', h('strong', {}, name), ' ended ', badge(d.state), ' before the edge joined.',
        d.message ? ` ${d.message}` : '');
      stop();
      showWhy(ans.job_id);
    });
    let timer = null;
    if (ans.tunnel) {  // show the tunnel's progress while waiting
      const poll = async () => {
        try {
          const t = await ctx.api.get('tunnel_status/{edge_name}', { values: { edge_name: name }, quiet: true });
          if (t && t.status && !check()) status.dataset.tunnel = t.status;
          if (t && t.status && line.className.includes('warn') && !line.textContent.startsWith('✖')) {
            say(`⏳ Job ${ans.job_id} submitted; tunnel ${t.status}; waiting for edge '${name}'…`);
          }
        } catch (e) { /* not yet known */ }
        timer = setTimeout(poll, 2000);
      };
      timer = setTimeout(poll, 1000);
    }
    // why it failed: the job's stderr and the edge's own log, as its parent edge sees them
    const showWhy = async (jobId) => {
      let why;
      try {
        why = await ctx.api.get('launch_log/{sid}/{job_id}', { values: { job_id: jobId }, quiet: true });
      } catch (e) {
        status.append(h('p', { class: 'muted' }, `The edge's log could not be read: ${e.message || e}`));
        return;
      }
      const part = (title, text, testid) => h('details', { class: 'launch-why', open: true },
        h('summary', {}, title), h('pre', { class: 'output', dataset: { testid } }, text));
      status.append(
        part('Job stderr (tail)', why.stderr || '(empty)', 'launch-stderr'),
        why.log !== null && why.log !== undefined
          ? part(`Edge log ${why.log_path} (tail)`, why.log || '(empty)', 'launch-log')
          : h('p', { class: 'muted', dataset: { testid: 'launch-log-note' } }, why.log_note || 'no edge log'));
    };
    const stop = () => { offTopo(); offJob(); clearTimeout(timer); watch = null; };
    watch = stop;
    check();
  };
  ctx.onDispose(() => { if (watch) watch(); });

  let chosen = () => null;
  const form = buildForm(spec(ctx, executors, dflt, sched, () => chosen()), async (v) => {
    const name = String(v.name || '').trim();
    if (!name) return;
    const args = ['-n', name];
    if (v.plugins && v.plugins.trim()) args.push('-p', v.plugins.trim());
    args.push(...splitArgs(v.extra));
    const body = jobSpec({ ...v, executable: WRAPPER, arguments: '' });
    body.job_spec.arguments = args;
    body.tunnel = !!v.tunnel;
    const ans = await ctx.api.post('submit_tunneled/{sid}', body, { quiet: true });
    onJob({ ...ans, state: ans.state || 'NEW', executable: WRAPPER, arguments: args, submitted: Date.now() / 1000 });
    launched.add(name);
    follow(ans.edge_name || name, ans);
    form.fields.name.set(freeName(ctx));
  });
  chosen = wireLimits(form, sched);
  return card(null, form.el, status);
}
