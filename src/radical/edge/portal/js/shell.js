// Honest states of the shell: a banner while the bridge is unreachable or stopped, actions
// that need the bridge held back meanwhile, and join/leave toasts coalesced per burst (a
// batch allocation bringing 200 edges up says so once, not 200 times).
import { h, replace } from './dom.js';

// ------------------------------------------------------------------------------ banner
// status: the event stream's ('connected', 'reconnecting', 'stopped', 'auth', ...).
export function showBridgeState(el, status, { delay, retry } = {}) {
  if (!el) return;
  const down = status === 'reconnecting' || status === 'stopped';
  el.hidden = !down;
  el.dataset.state = down ? status : 'ok';
  if (!down) { replace(el); return; }
  const retryBtn = h('button', { type: 'button', class: 'btn btn-small', dataset: { testid: 'bridge-retry' },
    onclick: () => retry && retry() }, status === 'stopped' ? 'Reconnect' : 'Retry now');
  if (status === 'stopped') {
    replace(el, h('strong', {}, 'Bridge stopped.'),
      h('span', {}, 'The bridge was terminated from this page. Start it again (e.g. `radical-edge up`), then reconnect.'),
      retryBtn);
  } else {
    const when = delay ? ` Next attempt in ${Math.max(1, Math.round(delay / 1000))} s.` : '';
    replace(el, h('strong', {}, 'Bridge unreachable.'),
      h('span', {}, `Showing the last known state; submitting is disabled until the bridge is back.${when}`),
      retryBtn);
  }
}

// ------------------------------------------------------------------------ held actions
// While offline, every submit button and bridge action inside `root` is disabled (also the
// ones a page renders meanwhile); back online, exactly those are enabled again. A submit
// button disabled only because its form is busy (`data-busy`, forms.js) is held too: its
// submit ending while offline must not enable it (forms.js keeps a held button disabled),
// and if it is still busy when the bridge returns it stays disabled until the submit ends.
const HELD = 'button[type=submit], [data-testid=terminate-bridge], [data-testid=disconnect-edge], [data-needs-bridge]';
let observer = null;

function hold(root) {
  root.querySelectorAll(HELD).forEach((el) => {
    if (el.dataset.heldOffline || (el.disabled && !el.dataset.busy)) return;
    el.dataset.heldOffline = '1';
    el.disabled = true;
    el.title = el.title || 'the bridge is unreachable';
  });
}

export function holdWhileOffline(root, offline) {
  if (!root) return;
  if (offline) {
    hold(root);
    if (!observer) {
      observer = new MutationObserver(() => hold(root));
      observer.observe(root, { childList: true, subtree: true });
    }
    return;
  }
  if (observer) { observer.disconnect(); observer = null; }
  root.querySelectorAll('[data-held-offline]').forEach((el) => {
    delete el.dataset.heldOffline;
    el.disabled = !!el.dataset.busy;
    if (el.title === 'the bridge is unreachable') el.removeAttribute('title');
  });
}

// ------------------------------------------------------------------------- join/leave
//: changes within this window become one toast per kind
export const COALESCE_MS = 1500;
const LIST_MAX = 4;

export function summary(names, verb) {
  if (names.length === 1) return `Edge '${names[0]}' ${verb}.`;
  const shown = names.slice(0, LIST_MAX).join(', ');
  const more = names.length > LIST_MAX ? ` and ${names.length - LIST_MAX} more` : '';
  return `${names.length} edges ${verb}: ${shown}${more}.`;
}

export class ChangeToasts {
  constructor(toast) {
    this.toast = toast;
    this.last = null;         // edge names of the previous topology
    this.joined = new Set();
    this.left = new Set();    // names
    this.latest = null;       // the newest topology (its `departed` reasons)
    this.timer = null;
  }

  update(data) {
    const edges = (data && data.edges) || {};
    const names = new Set(Object.keys(edges));
    if (this.last) {
      for (const n of names) if (!this.last.has(n)) { if (this.left.has(n)) this.left.delete(n); else this.joined.add(n); }
      for (const n of this.last) {
        if (names.has(n)) continue;
        if (this.joined.has(n)) { this.joined.delete(n); continue; }
        this.left.add(n);
      }
      if ((this.joined.size || this.left.size) && !this.timer) this.timer = setTimeout(() => this.flush(), COALESCE_MS);
    }
    this.last = names;
    this.latest = data;  // reasons are read at flush: a late `leave:` word may refine them
  }

  flush() {
    this.timer = null;
    const sort = (a) => a.sort(new Intl.Collator(undefined, { numeric: true }).compare);
    if (this.joined.size) this.toast(summary(sort([...this.joined]), 'joined'), 'info', { timeout: 4000 });
    if (this.left.size) {
      const names = sort([...this.left]);
      const departed = (this.latest && this.latest.departed) || {};
      const reasons = new Set(names.map((n) => (departed[n] || {}).reason || ''));
      const why = reasons.size === 1 && [...reasons][0] ? ` (${[...reasons][0]})` : '';
      this.toast(`${summary(names, 'left').slice(0, -1)}${why}.`, 'info', { timeout: 6000 });
    }
    this.joined.clear();
    this.left.clear();
  }
}
