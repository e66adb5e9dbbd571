// Generic monitors of a ui_config: table, metrics, card and task_list. Each returns
// {el, load()} (load() re-fetches `auto_load`), task_list also upsert(record).
import { h, replace, badge, format, fmtValue, kvList, card, json, button, table } from './dom.js';
import { confirmDialog, toast, loading, errorBox } from './ui.js';
import { LiveTable } from './livetable.js';

// The part of an answer a monitor shows: `field` of it, a dict of rows made a list.
export function pick(data, spec) {
  let v = spec.field ? (data || {})[spec.field] : data;
  if (spec.type === 'table' || spec.type === 'task_list') {
    if (v && !Array.isArray(v) && typeof v === 'object') {
      const lists = Object.values(v).filter(Array.isArray);
      if (!spec.field && lists.length === 1) v = lists[0];  // {"jobs": [...]}
      else v = Object.entries(v).map(([k, row]) => (row && typeof row === 'object' ? { [spec.key || 'name']: k, ...row } : { [spec.key || 'name']: k, value: row }));
    }
    return Array.isArray(v) ? v : [];
  }
  return v;
}

function inferColumns(rows) {
  const keys = [];
  rows.slice(0, 50).forEach((r) => Object.keys(r || {}).forEach((k) => { if (!keys.includes(k)) keys.push(k); }));
  return keys.slice(0, 12).map((k) => ({ field: k, label: k }));
}

function cell(row, col) {
  const v = row ? row[col.field] : undefined;
  if (col.badge) return badge(v);
  return format(v, col.format);
}

function matches(when, row) {
  if (!when) return true;
  const v = row ? row[when.field] : undefined;
  if (Array.isArray(when.in)) return when.in.map(String).includes(String(v));
  if ('equals' in when) return String(v) === String(when.equals);
  return true;
}

function actionButtons(spec, ctx, row, reload) {
  return (spec.row_actions || []).filter((a) => matches(a.when, row)).map((a) => button(a.label || a.id, async () => {
    if (a.confirm) {
      const ok = await confirmDialog({ title: a.label || a.id, message: fillText(a.confirm, row), confirmLabel: a.label || 'OK', danger: a.style === 'danger' });
      if (!ok) return;
    }
    try {
      const ans = await ctx.api.call(a.method || 'POST', a.path, { values: row });
      toast(a.success ? fillText(a.success, row) : `${a.label || a.id}: done`, 'success');
      if (reload) reload();
      return ans;
    } catch (e) { return null; }
  }, { style: a.style, testid: `action-${a.id}`, needsBridge: true }));
}

// '{job_id}' placeholders in a message, filled as plain text.
export function fillText(template, row) {
  return String(template).replace(/\{(\w+)\}/g, (m, k) => fmtValue(row ? row[k] : undefined));
}

// A monitor that cannot load says so in its own place (quiet calls: not also as a toast).
function tableMonitor(spec, ctx) {
  const body = h('div', { class: 'monitor-body' });
  const sub = h('div', { class: 'monitor-sub' });
  const mon = { el: null, rows: [] };
  const render = (rows) => {
    mon.rows = rows;
    const cols = spec.columns && spec.columns.length ? spec.columns : inferColumns(rows);
    const columns = cols.map((c) => ({ label: c.label || c.field, get: (r) => cell(r, c) }));
    if (spec.row_actions && spec.row_actions.length) {
      columns.push({ label: '', class: 'row-actions', get: (r) => h('span', {}, actionButtons(spec, ctx, r, mon.load)) });
    }
    replace(body, table(columns, rows, {
      empty: spec.empty_text || 'Nothing to show.',
      // a row that opens something is a Tab stop and opens with Enter too (as LiveTable's)
      rowProps: (r) => ({ class: spec.row_link ? 'clickable' : undefined,
        dataset: { key: fmtValue(r[spec.key || 'name']) },
        tabIndex: spec.row_link ? 0 : undefined,
        onclick: spec.row_link ? () => rowLink(spec, ctx, r, sub) : undefined,
        onkeydown: spec.row_link ? (ev) => { if (ev.key === 'Enter') rowLink(spec, ctx, r, sub); } : undefined }),
    }));
  };
  mon.load = async () => {
    if (!spec.auto_load) return;
    if (!mon.rows.length) replace(body, loading());
    try { render(pick(await ctx.api.get(spec.auto_load, { quiet: true }), spec)); } catch (e) { replace(body, errorBox(e)); }
  };
  mon.el = h('div', {}, body, sub);
  mon.set = render;
  return mon;
}

async function rowLink(spec, ctx, row, sub) {
  replace(sub, loading());
  try {
    const data = await ctx.api.get(spec.row_link, { values: row, quiet: true });
    const rows = pick(data, { type: 'table' });
    const cols = spec.row_link_columns && spec.row_link_columns.length ? spec.row_link_columns : inferColumns(rows);
    replace(sub, h('h4', {}, `${spec.title || ''} — ${fmtValue(row[spec.key || 'name'])}`),
      rows.length ? table(cols.map((c) => ({ label: c.label || c.field, get: (r) => cell(r, c) })), rows)
        : (Array.isArray(data) || (data && Object.values(data).some(Array.isArray)) ? h('p', { class: 'empty' }, 'Nothing to show.') : json(data)));
  } catch (e) { replace(sub, errorBox(e)); }
}

// Any nested answer as cards: objects of scalars -> key/value lists, lists -> tables.
export function renderValue(data) {
  if (data === null || data === undefined) return h('p', { class: 'empty' }, 'No data.');
  if (typeof data !== 'object') return h('p', {}, fmtValue(data));
  if (Array.isArray(data)) {
    if (data.every((r) => r && typeof r === 'object' && !Array.isArray(r))) {
      return table(inferColumns(data).map((c) => ({ label: c.label, get: (r) => fmtValue(r[c.field]) })), data);
    }
    return h('p', {}, fmtValue(data));
  }
  const scalars = Object.entries(data).filter(([, v]) => v === null || typeof v !== 'object' || (Array.isArray(v) && v.every((x) => typeof x !== 'object')));
  const nested = Object.entries(data).filter(([k]) => !scalars.some(([s]) => s === k));
  return h('div', { class: 'cards' },
    scalars.length ? card(null, kvList(scalars)) : null,
    nested.map(([k, v]) => card(k, renderValue(v))));
}

function metricsMonitor(spec, ctx) {
  const mon = { el: h('div', { class: 'monitor-body' }) };
  mon.set = (data) => replace(mon.el, renderValue(pick(data, spec)));
  mon.load = async () => {
    if (!spec.auto_load) return;
    try { mon.set(await ctx.api.get(spec.auto_load, { quiet: true })); } catch (e) { replace(mon.el, errorBox(e)); }
  };
  return mon;
}

function cardMonitor(spec, ctx) {
  const mon = { el: h('div', { class: 'monitor-body' }) };
  mon.set = (data) => {
    const v = pick(data, spec);
    if (v === null || v === undefined || (typeof v === 'object' && !Object.keys(v).length)) {
      replace(mon.el, h('p', { class: 'empty' }, spec.empty_text || 'Nothing to show.'));
    } else if (typeof v !== 'object') {
      replace(mon.el, h('p', {}, fmtValue(v)));
    } else {
      const keys = spec.fields && spec.fields.length ? spec.fields : Object.keys(v);
      replace(mon.el, kvList(keys.map((k) => [k, fmtValue(v[k])])));
    }
  };
  mon.load = async () => {
    if (!spec.auto_load) return;
    try { mon.set(await ctx.api.get(spec.auto_load, { quiet: true })); } catch (e) { replace(mon.el, errorBox(e)); }
  };
  return mon;
}

function taskListMonitor(spec, ctx, notif) {
  const idField = (notif && notif.id_field) || spec.id_field || 'id';
  const stateField = (notif && notif.state_field) || spec.state_field || 'state';
  const detail = h('div', { class: 'task-detail' });
  const extra = (spec.columns || []).map((c) => ({ label: c.label || c.field, get: (r) => cell(r, c) }));
  const live = new LiveTable({
    idField,
    stateField,
    empty: spec.empty_text || 'Nothing yet.',
    testid: `monitor-${spec.id}`,
    columns: [
      { label: idField, get: (r) => r[idField] },
      { label: stateField, get: (r) => badge(r[stateField]) },
      ...(extra.length ? extra : [{ label: 'exit code', get: (r) => r.exit_code }]),
    ],
    onSelect: (r) => replace(detail, h('h4', {}, fmtValue(r[idField])), json(r)),
    actions: spec.row_actions ? (r) => actionButtons(spec, ctx, r, null) : null,
  });
  const mon = { el: h('div', {}, live.el, detail), live };
  mon.upsert = (rec) => { const m = live.upsert(rec); if (m && live.selected === String(rec[idField])) live.select(live.selected); return m; };
  mon.set = (data) => pick(data, spec).forEach(mon.upsert);
  mon.load = async () => {
    if (!spec.auto_load) return;
    try { mon.set(await ctx.api.get(spec.auto_load, { quiet: true })); } catch (e) { /* optional */ }
  };
  return mon;
}

export function buildMonitor(spec, ctx, notif) {
  const kind = spec.type || 'metrics';
  let mon;
  if (kind === 'table') mon = tableMonitor(spec, ctx);
  else if (kind === 'card') mon = cardMonitor(spec, ctx);
  else if (kind === 'task_list') mon = taskListMonitor(spec, ctx, notif);
  else mon = metricsMonitor(spec, ctx);  // 'metrics' and anything unknown: show the data
  mon.spec = spec;
  mon.section = h('section', { class: ['card', 'monitor', spec.css_class], dataset: { monitor: spec.id || kind, type: kind } },
    spec.title ? h('h3', {}, spec.title) : null, mon.el);
  return mon;
}
