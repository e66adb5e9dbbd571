// Form building from field specs (the `forms[].fields` of a plugin's ui_config), shared by
// the generic renderer and the psij / rhapsody / lucid pages; its error slot also serves
// actions outside forms (xgfabric, staging).
//
// field spec: {name, type: text|number|select|checkbox|textarea|password|custom_attributes|
//              key_value, label, default, placeholder, options: [str | {value, label}],
//              required, column: 0|1, css_class, help,
//              validate(value, values) -> message | null   (checked as the user types),
//              matches: [words]  (a server error naming one of them, as a whole word, is
//                                 shown at this field)}
//
// Errors stay where they happened until dismissed or fixed: a field's own message under it,
// a refused submission in a box inside the form (never a toast that fades away).
import { h, replace } from './dom.js';
import { cleanMessage } from './ui.js';

let uid = 0;
//: the title of a refusal that came while the bridge went down: the call may have been done
const LOST = 'The bridge went down while this was sent: it may or may not have been done (check once it is back).';
//: ... and the bridge said it took the call back before it ran
const NOT_DONE = 'The bridge went down while this was sent: it was not done (try again once it is back).';
const nextId = (name) => `f-${String(name).replace(/[^\w-]/g, '_')}-${++uid}`;

// A key/value row editor; get() -> {key: value} (rows with an empty key are ignored).
export function kvEditor(name, { keyPlaceholder = 'key', valuePlaceholder = 'value', initial = {} } = {}) {
  const rows = h('div', { class: 'kv-rows' });
  const addRow = (k = '', v = '') => {
    const row = h('div', { class: 'kv-row' },
      h('input', { type: 'text', class: 'kv-key', placeholder: keyPlaceholder, value: k, 'aria-label': `${name} key` }),
      h('input', { type: 'text', class: 'kv-value', placeholder: valuePlaceholder, value: v, 'aria-label': `${name} value` }),
      h('button', { type: 'button', class: 'btn btn-small', title: 'remove', onclick: () => row.remove() }, '✕'));
    rows.append(row);
    return row;
  };
  Object.entries(initial || {}).forEach(([k, v]) => addRow(k, v));
  const el = h('div', { class: 'kv-editor', dataset: { field: name } }, rows,
    h('button', { type: 'button', class: 'btn btn-small', dataset: { testid: `${name}-add` }, onclick: () => addRow() }, '+ add'));
  return {
    el,
    addRow,
    get() {
      const out = {};
      rows.querySelectorAll('.kv-row').forEach((r) => {
        const k = r.querySelector('.kv-key').value.trim();
        if (k) out[k] = r.querySelector('.kv-value').value;
      });
      return out;
    },
    set(obj) { rows.replaceChildren(); Object.entries(obj || {}).forEach(([k, v]) => addRow(k, v)); },
  };
}

function options(spec) {
  return (spec.options || []).map((o) => (o !== null && typeof o === 'object'
    ? { value: String(o.value ?? ''), label: String(o.label ?? o.value ?? '') }
    : { value: String(o ?? ''), label: o === '' || o === null ? '—' : String(o) }));
}

// One field: {name, el (labelled wrapper), input, get(), set(v)}.
export function field(spec) {
  const name = String(spec.name || 'field');
  const id = nextId(name);
  const type = spec.type || 'text';
  const label = spec.label ?? name;
  let input;
  let get;
  let set;
  if (type === 'select') {
    input = h('select', { id, name }, options(spec).map((o) => h('option', { value: o.value }, o.label)));
    if (spec.default !== undefined && spec.default !== null) input.value = String(spec.default);
    get = () => input.value;
    set = (v) => { input.value = String(v ?? ''); };
  } else if (type === 'checkbox') {
    input = h('input', { id, name, type: 'checkbox', checked: !!spec.default });
    get = () => input.checked;
    set = (v) => { input.checked = !!v; };
  } else if (type === 'custom_attributes' || type === 'key_value' || type === 'environment') {
    const kv = kvEditor(name, type === 'environment' ? { keyPlaceholder: 'NAME', valuePlaceholder: 'value' }
      : { keyPlaceholder: 'e.g. slurm.constraint', valuePlaceholder: 'value' });
    input = kv.el;
    get = () => kv.get();
    set = (v) => kv.set(v);
  } else if (type === 'textarea') {
    input = h('textarea', { id, name, rows: spec.rows || 4, placeholder: spec.placeholder });
    input.value = spec.default ?? '';
    get = () => input.value;
    set = (v) => { input.value = v ?? ''; };
  } else {
    input = h('input', { id, name, type: ['number', 'password'].includes(type) ? type : 'text',
      placeholder: spec.placeholder, required: !!spec.required && spec.required !== 'false' });
    input.value = spec.default ?? '';
    get = () => (type === 'number' ? (input.value === '' ? null : Number(input.value)) : input.value);
    set = (v) => { input.value = v ?? ''; };
  }
  if (input.tagName !== 'DIV' && type !== 'checkbox') input.classList.add('input');
  input.dataset.field = name;
  const hintEl = h('small', { class: 'field-hint', id: `${id}-hint`, dataset: { testid: `${name}-hint` } });
  const errorEl = h('small', { class: 'field-error', id: `${id}-error`, role: 'alert',
    dataset: { testid: `${name}-error` }, hidden: true });
  const labelEl = type === 'checkbox'
    ? h('label', { class: 'check', for: id }, input, ' ', label)
    : h('label', { for: id }, label, spec.required ? h('span', { class: 'req', title: 'required' }, ' *') : null);
  const el = h('div', { class: ['field', `field-${type}`, spec.css_class], dataset: { name } },
    labelEl, type === 'checkbox' ? null : input,
    spec.help ? h('small', { class: 'help' }, spec.help) : null, hintEl, errorEl);
  input.setAttribute('aria-describedby', `${hintEl.id} ${errorEl.id}`);
  const f = { name, el, input, get, set, spec };
  f.setHint = (...parts) => replace(hintEl, ...parts);
  f.setError = (message) => {
    errorEl.hidden = !message;
    replace(errorEl, message ? cleanMessage(message) : '');
    if (message) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
  };
  f.error = () => (errorEl.hidden ? null : errorEl.textContent);
  return f;
}

// A place for the error of an action, kept until dismissed (or cleared by the next try):
// {el, show(err, title) -> the shown text, clear()}. Forms have one; pages with actions
// outside a form (xgfabric's editor) put one beside those actions.
export function errorSlot(testid) {
  const el = h('div', { class: 'form-error-slot', dataset: { testid } });
  const slot = {
    el,
    show: (err, title) => {
      const detail = cleanMessage((err && (err.detail || err.message)) || String(err));
      const status = err && err.status ? `${err.status}: ` : '';
      const close = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': 'Dismiss',
        dataset: { testid: 'dismiss-error' }, onclick: () => slot.clear() }, '✕');
      replace(el, h('div', { class: 'banner banner-bad form-error', role: 'alert' },
        h('span', {}, title ? h('strong', {}, `${title} `) : null, status, detail), close));
      return detail;
    },
    clear: () => replace(el),
  };
  return slot;
}

// Does the (lower-case) message name `word` as a word of its own? 'runtime' is not named by
// "RuntimeError", 'queue' is by "queue_name" (letters and digits only make up a word).
function mentions(lower, word) {
  const w = String(word).toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^a-z0-9])${w}($|[^a-z0-9])`).test(lower);
}

// Run the field's validator (if any) with the form's values; returns the message or null.
function check(f, values) {
  if (typeof f.spec.validate !== 'function') return null;
  let message = null;
  try { message = f.spec.validate(f.get(), values) || null; } catch (e) { message = String(e.message || e); }
  f.setError(message);
  return message;
}

// A whole form: {el, fields: {name: field}, values(), setBusy(bool)}.
export function buildForm(spec, onSubmit) {
  const fields = (spec.fields || []).map(field);
  const byName = Object.fromEntries(fields.map((f) => [f.name, f]));
  const submit = spec.submit || {};
  const btn = h('button', { type: 'submit', class: ['btn', `btn-${submit.style === 'danger' ? 'danger' : 'primary'}`],
    dataset: { testid: `${spec.id || 'form'}-submit` } }, submit.label || 'Submit');
  let body;
  if (spec.layout === 'grid2') {
    const cols = [h('div', { class: 'col' }), h('div', { class: 'col' })];
    fields.forEach((f) => cols[Number(f.spec.column) === 1 ? 1 : 0].append(f.el));
    body = h('div', { class: 'grid2' }, cols);
  } else {
    body = h('div', { class: 'fields' }, fields.map((f) => f.el));
  }
  const errors = errorSlot(`${spec.id || 'form'}-error`);
  const form = {
    fields: byName,
    values: () => Object.fromEntries(fields.map((f) => [f.name, f.get()])),
    // a button held while the bridge is down (shell.js) stays disabled when a submit ends
    setBusy: (busy) => {
      if (busy) btn.dataset.busy = '1'; else delete btn.dataset.busy;
      btn.disabled = busy || !!btn.dataset.heldOffline;
      form.el.classList.toggle('busy', busy);
    },
    // validate every field; true when all are fine (the first bad one gets the focus)
    validate: () => {
      const values = form.values();
      const bad = fields.filter((f) => check(f, values));
      if (bad.length) bad[0].input.focus();
      return !bad.length;
    },
    // a refused submission: kept in the form until dismissed; also at the field it names
    showError: (err, title) => {
      const detail = errors.show(err, title);
      const lower = detail.toLowerCase();
      fields.forEach((f) => {
        const words = f.spec.matches || [f.name];
        if (words.some((w) => mentions(lower, w))) f.setError(detail);
      });
    },
    clearError: () => errors.clear(),
  };
  fields.forEach((f) => {
    const recheck = () => { if (f.error() || f.input === document.activeElement) check(f, form.values()); };
    f.input.addEventListener('input', recheck);
    f.input.addEventListener('change', () => check(f, form.values()));
    f.input.addEventListener('blur', () => check(f, form.values()), true);
  });
  form.el = h('form', { class: ['form', spec.css_class], dataset: { form: spec.id || 'form' }, novalidate: 'novalidate',
    onsubmit: async (ev) => {
      ev.preventDefault();
      if (!form.validate()) return;
      form.clearError();
      form.setBusy(true);
      try {
        await onSubmit(form.values(), form);
      } catch (e) {  // held meanwhile: the bridge went down while this was in flight
        const held = btn.dataset.heldOffline;
        form.showError(e, held && e.outcome === 'not_run' ? NOT_DONE : held ? LOST : spec.errorTitle);
      } finally { form.setBusy(false); }
    } },
  spec.title ? h('h3', {}, spec.title) : null,
  spec.description ? h('p', { class: 'muted' }, spec.description) : null,
  body,
  errors.el,
  h('div', { class: 'form-actions' }, btn));
  return form;
}

// "a b 'c d'" -> ['a', 'b', 'c d'] (simple shell-like splitting with quotes).
export function splitArgs(text) {
  const out = [];
  const re = /"((?:\\.|[^"\\])*)"|'([^']*)'|(\S+)/g;
  let m;
  while ((m = re.exec(String(text || ''))) !== null) {
    out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2] !== undefined ? m[2] : m[3]);
  }
  return out;
}
