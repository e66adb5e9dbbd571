// The bridge's event stream (GET /events), read with fetch streaming so the token goes in
// the Authorization header (not in the URL). Reconnects with exponential backoff and
// `Last-Event-ID`, so notifications missed while away are replayed; every (re)connect
// starts with a fresh `topology` event, which refreshes the tree. When the bridge cannot
// replay (the portal was away longer than the stream's retention, or Redis lost it) it sends
// a `gap` event instead: listeners of 'gap' re-read the topology, and 'open' fires with
// `reconnected: true` so every open page re-loads its state from the edge.
import { url, authHeaders, askToken, getToken } from './api.js';

const MIN_BACKOFF = 500;
const MAX_BACKOFF = 8000;
const STALL_MS = 40000;  // no byte (not even a keep-alive) for this long: reconnect

export class EventStream {
  constructor() {
    this.listeners = new Map();   // kind -> Set(fn)
    this.lastId = null;
    this.status = 'idle';
    this.backoff = MIN_BACKOFF;
    this.connects = 0;
    this.gaps = 0;
    this._stopped = false;
    this._ctrl = null;
    this._timer = null;
    this._stall = null;
  }

  // kind: 'topology' | 'notification' | 'gap' | 'status' | 'open'. Returns an unsubscribe function.
  on(kind, fn) {
    if (!this.listeners.has(kind)) this.listeners.set(kind, new Set());
    this.listeners.get(kind).add(fn);
    return () => this.listeners.get(kind).delete(fn);
  }

  // Notifications of one plugin instance (optionally one topic): fn(data, note).
  onNotification({ edge, plugin, topic }, fn) {
    return this.on('notification', (note) => {
      if (edge && note.edge !== edge) return;
      if (plugin && note.plugin !== plugin) return;
      if (topic && note.topic !== topic && !(Array.isArray(topic) && topic.includes(note.topic))) return;
      fn(note.data || {}, note);
    });
  }

  emit(kind, payload) {
    for (const fn of [...(this.listeners.get(kind) || [])]) {
      try { fn(payload); } catch (e) { console.error('event handler failed', e); }
    }
  }

  setStatus(status, info = {}) {
    this.status = status;
    this.emit('status', { status, ...info });
  }

  start() {
    this._stopped = false;
    this._connect();
  }

  stop() {
    this._stopped = true;
    clearTimeout(this._timer);
    clearTimeout(this._stall);
    if (this._ctrl) this._ctrl.abort();
    this.setStatus('stopped');
  }

  // Drop the current connection and connect again now (e.g. after a new token).
  reconnect() {
    this._stopped = false;
    clearTimeout(this._timer);
    if (this._ctrl) this._ctrl.abort();
    this.backoff = MIN_BACKOFF;
    this._connect();
  }

  _schedule(reason) {
    if (this._stopped) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF);
    this.setStatus('reconnecting', { reason, delay });
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._connect(), delay);
  }

  _kick() {
    clearTimeout(this._stall);
    this._stall = setTimeout(() => { if (this._ctrl) this._ctrl.abort('stalled'); }, STALL_MS);
  }

  async _connect() {
    if (this._stopped) return;
    if (this._ctrl) this._ctrl.abort();
    const ctrl = new AbortController();
    this._ctrl = ctrl;
    this.setStatus(this.connects ? 'reconnecting' : 'connecting');
    const headers = { Accept: 'text/event-stream', ...authHeaders() };
    if (this.lastId) headers['Last-Event-ID'] = this.lastId;
    let res;
    try {
      res = await fetch(url('events'), { headers, signal: ctrl.signal, cache: 'no-store' });
    } catch (e) {
      if (ctrl === this._ctrl) this._schedule('bridge unreachable');
      return;
    }
    if (res.status === 401) {
      this.setStatus('auth');
      const t = await askToken(getToken() ? 'The token was not accepted. Please enter a valid token.' : undefined);
      if (t && ctrl === this._ctrl) this._connect(); else if (!t) this.setStatus('auth');
      return;
    }
    if (!res.ok || !res.body) {
      if (ctrl === this._ctrl) this._schedule(`HTTP ${res.status}`);
      return;
    }
    try {
      await this._read(res.body.getReader(), ctrl);
      if (ctrl === this._ctrl) this._schedule('stream ended');
    } catch (e) {
      if (ctrl === this._ctrl) this._schedule(e && e.name === 'AbortError' ? 'stalled' : 'stream broken');
    } finally {
      clearTimeout(this._stall);
    }
  }

  async _read(reader, ctrl) {
    const decoder = new TextDecoder();
    let buf = '';
    let data = [];
    let id = null;
    this._kick();
    for (;;) {
      const { value, done } = await reader.read();
      if (done || ctrl !== this._ctrl) return;
      this._kick();
      buf += decoder.decode(value, { stream: true });
      const lines = buf.split(/\r\n|\r|\n/);
      buf = lines.pop();
      for (const line of lines) {
        if (line === '') {
          if (data.length) this._dispatch(data.join('\n'), id);
          data = [];
          id = null;
        } else if (line.startsWith(':')) {
          // keep-alive comment
        } else {
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          let val = i < 0 ? '' : line.slice(i + 1);
          if (val.startsWith(' ')) val = val.slice(1);
          if (field === 'data') data.push(val);
          else if (field === 'id') id = val;
        }
      }
    }
  }

  _dispatch(raw, id) {
    if (id) this.lastId = id;
    let msg;
    try { msg = JSON.parse(raw); } catch (e) { return; }
    if (!msg || typeof msg !== 'object') return;
    if (msg.topic === 'topology') {
      if (this.status !== 'connected') {
        this.connects += 1;
        this.backoff = MIN_BACKOFF;
        this.setStatus('connected', { reconnected: this.connects > 1 });
        this.emit('open', { reconnected: this.connects > 1 });
      }
      this.emit('topology', msg.data || {});
    } else if (msg.topic === 'notification') {
      this.emit('notification', msg.data || {});
    } else if (msg.topic === 'gap') {
      // notifications were lost for good: whoever follows state by notification re-reads it
      this.gaps += 1;
      console.warn('event stream gap', msg.data);
      this.emit('gap', msg.data || {});
      this.emit('open', { reconnected: true, gap: true });
    }
  }
}
