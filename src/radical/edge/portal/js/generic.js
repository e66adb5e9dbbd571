// The generic plugin page, rendered from the plugin's `ui_config` alone (docs/portal.md has
// the schema): forms, monitors (table / metrics / card / task_list), notifications by
// topic, plus an endpoint console so even a plugin without any ui_config is usable.
import { h, add, replace, json, card, fmtValue } from './dom.js';
import { buildForm } from './forms.js';
import { buildMonitor } from './monitors.js';
import { pluginHeader } from './pages.js';
import { errorBox, toast } from './ui.js';

const MAX_EVENTS = 50;

function notificationSpecs(ui) {
  const n = ui.notifications;
  if (!n) return [];
  return (Array.isArray(n) ? n : [n]).filter((x) => x && typeof x === 'object');
}

// Records carried by one notification: the data itself, or the list of a batch
// ({"tasks": [...]} / {"items": [...]} / {"records": [...]}).
function records(data) {
  if (!data || typeof data !== 'object') return [];
  for (const k of ['tasks', 'items', 'records', 'jobs']) if (Array.isArray(data[k])) return data[k];
  return [data];
}

function eventLog() {
  const list = h('ol', { class: 'event-log', reversed: 'reversed' });
  const el = h('details', { class: 'card events-card', open: true },
    h('summary', {}, 'Notifications'), h('p', { class: 'empty' }, 'None received while this page was open.'), list);
  return {
    el,
    add(topic, data) {
      el.querySelector('.empty').hidden = true;
      list.prepend(h('li', {}, h('code', { class: 'topic' }, topic), ' ', h('span', { class: 'event-data' }, fmtValue(data))));
      while (list.children.length > MAX_EVENTS) list.lastChild.remove();
    },
  };
}

function consoleCard(ctx) {
  const method = h('select', { class: 'input', 'aria-label': 'method' }, ['GET', 'POST'].map((m) => h('option', { value: m }, m)));
  const path = h('input', { class: 'input', type: 'text', value: 'health', 'aria-label': 'path', placeholder: 'path, e.g. health or status/{sid}' });
  const body = h('textarea', { class: 'input', rows: 3, placeholder: 'JSON body (POST)', 'aria-label': 'body' });
  const out = h('div', { class: 'console-out' });
  const run = async (ev) => {
    ev.preventDefault();
    let payload;
    if (method.value === 'POST' && body.value.trim()) {
      try { payload = JSON.parse(body.value); } catch (e) { replace(out, errorBox(`body is not valid JSON: ${e.message}`)); return; }
    }
    try {  // the answer or the error shows below the console, nowhere else
      const ans = await ctx.api.call(method.value, path.value.trim().replace(/^\/+/, ''), { body: payload, quiet: true });
      replace(out, json(ans));
    } catch (e) { replace(out, errorBox(e)); }
  };
  return h('details', { class: 'card console' },
    h('summary', {}, 'Call an endpoint'),
    h('p', { class: 'muted' }, `Requests go to /${ctx.edge}/${ctx.plugin}/PATH; {sid} is replaced by this page's session id.`),
    h('form', { class: 'console-form', onsubmit: run }, method, path, h('button', { type: 'submit', class: 'btn' }, 'Send'), body),
    out);
}

export default async function mount(ctx) {
  const ui = (ctx.info && ctx.info.ui_config) || {};
  const notifs = notificationSpecs(ui);
  const monitors = (Array.isArray(ui.monitors) ? ui.monitors : [])
    .filter((m) => m && typeof m === 'object')
    .map((m) => buildMonitor(m, ctx, notifs[0]));
  const taskLists = monitors.filter((m) => m.upsert);
  const log = eventLog();
  const loadAll = () => Promise.all(monitors.map((m) => m.load()));

  const forms = (Array.isArray(ui.forms) ? ui.forms : []).filter((f) => f && typeof f === 'object').map((spec) => {
    const result = h('div', { class: 'form-result', dataset: { testid: `${spec.id || 'form'}-result` } });
    const form = buildForm(spec, async (values) => {
      const endpoint = spec.endpoint || (spec.submit && spec.submit.endpoint) || `${spec.id || 'submit'}/{sid}`;
      // quiet: a refusal is shown once, in the form and at its field (buildForm)
      const ans = await ctx.api.call(spec.method || 'POST', endpoint, { body: values, quiet: true });
      replace(result, json(ans));
      const idField = (notifs[0] && notifs[0].id_field) || 'id';
      for (const rec of Array.isArray(ans) ? ans : [ans]) {
        if (rec && typeof rec === 'object' && rec[idField] !== undefined) taskLists.forEach((t) => t.upsert(rec));
      }
      toast(`${(spec.submit && spec.submit.label) || 'Submitted'} ✓`, 'success', { timeout: 2500 });
      if (spec.refresh_after !== false) monitors.filter((m) => !m.upsert).forEach((m) => m.load());
    });
    return h('section', { class: 'card form-card' }, form.el, result);
  });

  ctx.onDispose(ctx.events.onNotification({ edge: ctx.edge, plugin: ctx.plugin }, (data, note) => {
    log.add(note.topic, data);
    const spec = notifs.find((n) => n.topic === note.topic || `${n.topic}_batch` === note.topic
      || (Array.isArray(n.topics) && n.topics.includes(note.topic)));
    if (spec) records(data).forEach((r) => taskLists.forEach((t) => t.upsert(r)));
  }));
  ctx.onDispose(ctx.events.on('open', ({ reconnected }) => { if (reconnected) loadAll(); }));

  const empty = !forms.length && !monitors.length;
  add(ctx.el,
    pluginHeader(ctx, { onRefresh: ui.refresh_button === false ? null : loadAll }),
    empty ? card(null, h('p', { class: 'muted' }, 'This plugin describes no forms or monitors; use the endpoint console below.')) : null,
    forms.length ? h('div', { class: 'forms' }, forms) : null,
    ...monitors.map((m) => m.section),
    log.el,
    consoleCard(ctx));
  await loadAll();
}
