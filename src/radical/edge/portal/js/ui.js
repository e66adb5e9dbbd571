// Toasts and modal dialogs (confirmation, token prompt), built with dom.js only.
import { h, clear } from './dom.js';

const MAX_TEXT = 600;

// Server messages can be long or (from a broken plugin) contain a Python traceback: show
// the gist only, never the stack.
export function cleanMessage(text) {
  let s = String(text ?? '').trim();
  if (/Traceback \(most recent call last\)/.test(s) || /^\s*File ".*", line \d+/m.test(s)) {
    const lines = s.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    s = lines.filter((l) => !/^(Traceback|File ")/.test(l)).pop() || 'internal error';
  }
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;
}

function toastBox() {
  let box = document.getElementById('toasts');
  if (!box) {
    box = h('div', { id: 'toasts', 'aria-live': 'polite' });
    document.body.appendChild(box);
  }
  return box;
}

// kind: 'error' | 'info' | 'success'
export function toast(message, kind = 'error', { title, timeout } = {}) {
  const close = () => el.remove();
  const el = h('div', { class: ['toast', `toast-${kind}`], role: kind === 'error' ? 'alert' : 'status',
    dataset: { testid: 'toast', kind } },
  h('div', { class: 'toast-body' },
    title ? h('strong', { class: 'toast-title' }, title) : null,
    h('span', { class: 'toast-msg' }, cleanMessage(message))),
  h('button', { type: 'button', class: 'toast-close', title: 'Dismiss', 'aria-label': 'Dismiss', onclick: close }, '×'));
  const box = toastBox();
  box.appendChild(el);
  while (box.children.length > 5) box.firstChild.remove();
  setTimeout(close, timeout ?? (kind === 'error' ? 12000 : 5000));
  return el;
}

function dialog(build) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'modal' });
    let done = false;
    const finish = (value) => {
      if (done) return;
      done = true;
      dlg.close();
      dlg.remove();
      resolve(value);
    };
    dlg.addEventListener('cancel', (ev) => { ev.preventDefault(); finish(null); });
    build(dlg, finish);
    document.body.appendChild(dlg);
    dlg.showModal();
  });
}

// Resolves true when confirmed, false otherwise. A destructive question starts with the
// focus on Cancel, so a stray Enter or Space never destroys anything.
export function confirmDialog({ title = 'Are you sure?', message = '', confirmLabel = 'Confirm', danger = true } = {}) {
  return dialog((dlg, finish) => {
    const ok = h('button', { type: 'button', class: ['btn', danger ? 'btn-danger' : 'btn-primary'],
      dataset: { testid: 'confirm-ok' }, onclick: () => finish(true) }, confirmLabel);
    const cancel = h('button', { type: 'button', class: 'btn', dataset: { testid: 'confirm-cancel' }, onclick: () => finish(false) }, 'Cancel');
    const heading = h('h2', { id: `dlg-${Date.now()}` }, title);
    dlg.setAttribute('aria-labelledby', heading.id);
    if (danger) dlg.setAttribute('role', 'alertdialog');
    dlg.append(heading, h('p', { class: 'modal-msg' }, message), h('div', { class: 'modal-actions' }, cancel, ok));
    setTimeout(() => (danger ? cancel : ok).focus(), 0);
  }).then((v) => v === true);
}

// Asks for the bridge's bearer token; resolves the string, or null when cancelled.
export function tokenDialog(message) {
  return dialog((dlg, finish) => {
    const input = h('input', { type: 'password', name: 'token', autocomplete: 'off',
      placeholder: 'bearer token', dataset: { testid: 'token-input' } });
    const form = h('form', { method: 'dialog', onsubmit: (ev) => { ev.preventDefault(); finish(input.value.trim() || null); } },
      h('h2', {}, '🔑 Bridge token required'),
      h('p', { class: 'modal-msg' }, message || 'This bridge requires an access token. Open the login link `radical-edge up` printed (or run `radical-edge login`), or paste a token here: it is kept for this browser tab only.'),
      input,
      h('div', { class: 'modal-actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => finish(null) }, 'Cancel'),
        h('button', { type: 'submit', class: 'btn btn-primary', dataset: { testid: 'token-ok' } }, 'Connect')));
    dlg.append(form);
    setTimeout(() => input.focus(), 0);
  });
}

// A spinner-ish placeholder while something loads.
export function loading(text = 'Loading…') {
  return h('p', { class: 'loading' }, h('span', { class: 'spinner' }), ' ', text);
}

export function errorBox(err) {
  return h('p', { class: 'error-box' }, `⚠ ${cleanMessage(err && err.message ? err.message : err)}`);
}

export { clear };
