// A table of records keyed by an id that updates row by row (jobs, tasks, anything driven
// by notifications), and an output pane that grows as stdout/stderr chunks arrive.
import { h, replace, fmtValue } from './dom.js';

export class LiveTable {
  // columns: [{label, get(rec) -> text|Node, class}]; actions(rec) -> [Node]
  constructor({ idField = 'id', stateField = 'state', columns, empty = 'Nothing yet.', onSelect, actions, testid = 'live-table' }) {
    this.idField = idField;
    this.stateField = stateField;
    this.columns = columns;
    this.onSelect = onSelect;
    this.actions = actions;
    this.records = new Map();
    this.rows = new Map();
    this.selected = null;
    this.tbody = h('tbody');
    this.emptyEl = h('p', { class: 'empty' }, empty);
    const head = [...columns.map((c) => h('th', { class: c.class }, c.label)), actions ? h('th', {}, '') : null];
    this.tableEl = h('div', { class: 'table-wrap', tabIndex: 0, hidden: true },
      h('table', { class: 'grid livetable', dataset: { testid } }, h('thead', {}, h('tr', {}, head)), this.tbody));
    this.el = h('div', { class: 'live-table' }, this.emptyEl, this.tableEl);
  }

  get size() { return this.records.size; }

  get(id) { return this.records.get(String(id)); }

  all() { return [...this.records.values()]; }

  // Merge `rec` into the record with the same id (new ones go on top); returns the merge.
  upsert(rec) {
    if (!rec || rec[this.idField] === undefined || rec[this.idField] === null) return null;
    const id = String(rec[this.idField]);
    const before = this.records.get(id) || {};
    // replies and notifications race: a record from an earlier state (a late "RUNNING"
    // after "DONE") only fills in what is missing, it never overwrites
    const sf = this.stateField;
    const stale = sf in before && stateRank(rec[sf]) < stateRank(before[sf]);
    const merged = stale ? { ...rec, ...before } : { ...before, ...rec };
    this.records.set(id, merged);
    const row = this._row(id, merged);
    const old = this.rows.get(id);
    if (old) old.replaceWith(row); else this.tbody.prepend(row);
    this.rows.set(id, row);
    this.emptyEl.hidden = true;
    this.tableEl.hidden = false;
    return merged;
  }

  remove(id) {
    const key = String(id);
    const row = this.rows.get(key);
    if (row) row.remove();
    this.rows.delete(key);
    this.records.delete(key);
    if (!this.records.size) { this.emptyEl.hidden = false; this.tableEl.hidden = true; }
  }

  select(id) {
    this.selected = id === null ? null : String(id);
    this.rows.forEach((row, key) => row.classList.toggle('selected', key === this.selected));
    if (this.onSelect && this.selected !== null) this.onSelect(this.records.get(this.selected));
  }

  _row(id, rec) {
    const cells = this.columns.map((c) => {
      let v;
      try { v = c.get(rec); } catch (e) { v = '—'; }
      return h('td', { class: c.class }, v instanceof Node ? v : fmtValue(v));
    });
    if (this.actions) {
      cells.push(h('td', { class: 'row-actions', onclick: (ev) => ev.stopPropagation() }, this.actions(rec) || []));
    }
    return h('tr', { class: [this.onSelect && 'clickable', this.selected === id && 'selected'], dataset: { id },
      tabIndex: this.onSelect ? 0 : undefined,
      onclick: () => this.select(id),
      onkeydown: (ev) => { if (ev.key === 'Enter') this.select(id); } }, cells);
  }
}

// Output that grows: append(text) keeps the view scrolled to the end when it was there.
export class OutputPane {
  constructor(title, testid) {
    this.pre = h('pre', { class: 'output', dataset: { testid } });
    this.el = h('div', { class: 'output-pane' }, h('h4', {}, title), this.pre);
    this.length = 0;
  }

  set(text) {
    replace(this.pre, text || '');
    this.length = (text || '').length;
  }

  append(text) {
    if (!text) return;
    const atEnd = this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 4;
    this.pre.appendChild(document.createTextNode(text));
    this.length += text.length;
    if (atEnd) this.pre.scrollTop = this.pre.scrollHeight;
  }
}

export const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELED', 'CANCELLED', 'DONE']);
export const isTerminal = (state) => TERMINAL.has(String(state || '').toUpperCase());
const STARTED = new Set(['ACTIVE', 'RUNNING', 'EXECUTING']);

// How far along a state is (unknown states rank with the waiting ones).
export function stateRank(state) {
  const s = String(state ?? '').toUpperCase();
  if (!s || s === 'NEW' || s === 'NONE' || s === 'NULL') return 0;
  if (TERMINAL.has(s)) return 3;
  if (STARTED.has(s)) return 2;
  return 1;  // QUEUED, PENDING, ...
}
