// DOM helpers. Everything the portal shows is built here, and data only ever becomes
// text (textContent / text nodes / attribute values) -- never markup. There is no
// innerHTML anywhere in the portal.

const FORBIDDEN = new Set(['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'srcdoc']);
const URL_ATTRS = new Set(['href', 'src', 'action', 'formaction']);
const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'open',
  'placeholder', 'type', 'name', 'id', 'title', 'tabIndex', 'required', 'multiple',
  'readOnly', 'min', 'max', 'step', 'rows', 'colSpan']);

// Only relative URLs, fragments and http(s) links: no javascript:, data: or the like.
export function safeUrl(value) {
  try {
    const u = new URL(String(value ?? ''), document.baseURI);
    return u.protocol === 'http:' || u.protocol === 'https:' ? String(value) : '#';
  } catch (e) {
    return '#';
  }
}

function append(el, child) {
  if (child === null || child === undefined || child === false || child === true) return;
  if (Array.isArray(child)) { child.forEach((c) => append(el, c)); return; }
  if (child instanceof Node) { el.appendChild(child); return; }
  el.appendChild(document.createTextNode(String(child)));
}

// h('div', {class: 'x', on: {click: fn}, dataset: {edge: 'a'}}, 'text', h('b', {}, 'bold'))
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false && !PROPS.has(key)) continue;
    if (FORBIDDEN.has(key)) throw new Error(`dom.h: '${key}' is not allowed`);
    if (key === 'class') el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') Object.entries(value).forEach(([k, v]) => { el.dataset[k] = String(v); });
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (key === 'on') Object.entries(value).forEach(([ev, fn]) => el.addEventListener(ev, fn));
    else if (key.startsWith('on')) {
      if (typeof value !== 'function') throw new Error(`dom.h: '${key}' must be a function`);
      el.addEventListener(key.slice(2), value);
    }
    else if (URL_ATTRS.has(key)) el.setAttribute(key, safeUrl(value));
    else if (PROPS.has(key)) el[key] = value;
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

// Append children (nodes, text, arrays; null/false skipped) to `el`.
export function add(el, ...children) {
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// ---------------------------------------------------------------------------- formatting
export function fmtBytes(n) {
  if (n === null || n === undefined || n === '' || Number.isNaN(Number(n))) return '—';
  let v = Number(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function fmtDuration(sec) {
  if (sec === null || sec === undefined || sec === '') return '—';
  if (typeof sec === 'string' && !/^\d+(\.\d+)?$/.test(sec)) return sec;  // already "1:02:03"
  let s = Math.max(0, Math.floor(Number(sec)));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const mm = Math.floor(s / 60); s -= mm * 60;
  if (d) return `${d}d ${hh}h ${String(mm).padStart(2, '0')}m`;
  if (hh) return `${hh}h ${String(mm).padStart(2, '0')}m`;
  if (mm) return `${mm}m ${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

export function fmtTime(epoch) {
  if (!epoch) return '—';
  const d = new Date(Number(epoch) * (Number(epoch) < 1e12 ? 1000 : 1));
  return Number.isNaN(d.getTime()) ? String(epoch) : d.toLocaleString();
}

// Any value as short text (objects as compact JSON).
export function fmtValue(v) {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v)) return v.every((x) => typeof x !== 'object' || x === null) ? v.join(', ') : JSON.stringify(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function format(v, how) {
  if (how === 'bytes') return fmtBytes(v);
  if (how === 'duration') return fmtDuration(v);
  if (how === 'time') return fmtTime(v);
  if (how === 'percent') return v === null || v === undefined ? '—' : `${Number(v).toFixed(1)} %`;
  return fmtValue(v);
}

// --------------------------------------------------------------------------- components
export function badge(state, extra = '') {
  const s = state === null || state === undefined || state === '' ? 'PENDING' : String(state);
  const cls = s.toLowerCase().replace(/[^a-z0-9_-]/g, '');
  return h('span', { class: ['badge', `st-${cls}`, extra], dataset: { state: s } }, s);
}

export function bar(percent, label) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  const level = p >= 90 ? 'crit' : p >= 70 ? 'warn' : 'ok';
  return h('div', { class: 'bar', title: label ?? `${p.toFixed(1)} %` },
    h('div', { class: ['bar-fill', level], style: { width: `${p}%` } }),
    h('span', { class: 'bar-label' }, label ?? `${p.toFixed(1)} %`));
}

export function card(title, ...body) {
  return h('section', { class: 'card' }, title ? h('h3', {}, title) : null, ...body);
}

// A two-column key/value list; `rows` is [[label, value-or-node], ...].
export function kvList(rows) {
  return h('dl', { class: 'kv' }, rows.map(([k, v]) => [
    h('dt', {}, k), h('dd', {}, v instanceof Node ? v : fmtValue(v))]));
}

// A simple table: columns [{label, get(row) -> text|Node, class}], rows [...].
export function table(columns, rows, { empty = 'Nothing to show.', rowProps } = {}) {
  if (!rows || rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap', tabIndex: 0 }, h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c.class }, c.label)))),
    h('tbody', {}, rows.map((row) => h('tr', rowProps ? rowProps(row) : {},
      columns.map((c) => {
        const v = c.get(row);
        return h('td', { class: c.class }, v instanceof Node ? v : fmtValue(v));
      }))))));
}

export function pre(text, cls = 'output') {
  return h('pre', { class: cls }, text ?? '');
}

export function json(value) {
  let text;
  try { text = JSON.stringify(value, null, 2); } catch (e) { text = String(value); }
  return h('pre', { class: 'json' }, text);
}

// needsBridge: an action that changes state, held (disabled) while the bridge is down like
// a form's submit (shell.js).
export function button(label, onclick, { style = '', title, testid, disabled, needsBridge } = {}) {
  const dataset = { ...(testid ? { testid } : {}), ...(needsBridge ? { needsBridge: '1' } : {}) };
  return h('button', { type: 'button', class: ['btn', style && `btn-${style}`], title, disabled,
    dataset, onclick }, label);
}
