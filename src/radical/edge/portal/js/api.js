// Talking to the bridge: fetch with the bearer token, errors become toasts carrying the
// server's `detail`, plugin sessions are created lazily and renewed when they expire.
import { toast, tokenDialog, cleanMessage } from './ui.js';

// The bridge root: this module lives at <root>/portal/js/api.js, so the portal works under
// any base URL (reverse proxies with a path prefix included).
export const ROOT = new URL('../../', import.meta.url);

const TOKEN_KEY = 'radical_edge_token';
const SID_PREFIX = 'radical_edge_sid:';

export function url(path, query) {
  const u = new URL(String(path).replace(/^\/+/, ''), ROOT);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
  }
  return u;
}

export function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
  } catch (e) { /* private mode: keep going without persistence */ }
}

// A login link (`radical-edge up` / `radical-edge login`) opens the portal at `#login=TICKET`:
// trade the single-use ticket for a token of this tab before anything else talks to the
// bridge. The fragment never reaches a server and is removed from the address bar at once.
export async function redeemLoginLink() {
  const m = /^#login=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (!m) return false;
  history.replaceState(null, '', location.pathname + location.search);
  try {
    const res = await fetch(url('bridge/login'), {
      method: 'POST', cache: 'no-store',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ ticket: m[1] }),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      toast(detailText(data, 'login failed'), 'error', { title: 'Login link' });
      return false;
    }
    setToken(data.token);
    return true;
  } catch (e) {
    toast('the bridge cannot be reached', 'error', { title: 'Login link' });
    return false;
  }
}

export function authHeaders() {
  const t = getToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

export class ApiError extends Error {
  // outcome: the bridge's word on whether a call ran ('not_run' | 'unknown'), when it gave one
  constructor(status, detail, path, outcome = null) {
    super(status ? `${status}: ${detail}` : detail);
    this.status = status;
    this.detail = detail;
    this.path = path;
    this.outcome = outcome;
  }
}

// One token prompt at a time, shared by every caller that got a 401.
let pendingAuth = null;
export function askToken(message) {
  if (!pendingAuth) {
    pendingAuth = tokenDialog(message).then((t) => {
      pendingAuth = null;
      if (t) setToken(t);
      document.dispatchEvent(new CustomEvent('radical:token', { detail: { ok: !!t } }));
      return t;
    });
  }
  return pendingAuth;
}

function detailText(body, fallback) {
  if (body && typeof body === 'object' && 'detail' in body) {
    const d = body.detail;
    if (typeof d === 'string') return d;
    if (Array.isArray(d)) {  // FastAPI validation errors
      return d.map((e) => (e && e.msg ? `${(e.loc || []).join('.')}: ${e.msg}` : JSON.stringify(e))).join('; ');
    }
    return JSON.stringify(d);
  }
  return fallback;
}

// request('POST', 'edge/list') -> parsed JSON. Options: body (JSON), query, quiet (no
// toast), signal.
export async function request(method, path, { body, query, quiet = false, signal, retried = false } = {}) {
  const headers = { Accept: 'application/json', ...authHeaders() };
  const init = { method, headers, signal, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url(path, query), init);
  } catch (exc) {
    if (exc && exc.name === 'AbortError') throw exc;
    const err = new ApiError(0, 'the bridge cannot be reached', path);
    if (!quiet) toast(err.message, 'error', { title: `${method} ${path}` });
    throw err;
  }
  if (res.status === 401 && !retried) {
    const t = await askToken(getToken() ? 'The token was not accepted. Please enter a valid token.' : undefined);
    if (t) return request(method, path, { body, query, quiet, signal, retried: true });
  }
  const ctype = res.headers.get('content-type') || '';
  let data = null;
  try {
    data = ctype.includes('json') ? await res.json() : await res.text();
  } catch (e) {
    data = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, cleanMessage(detailText(data, res.statusText || 'request failed')), path,
      data && typeof data === 'object' && typeof data.outcome === 'string' ? data.outcome : null);
    if (!quiet) toast(err.detail, 'error', { title: `${res.status} — ${method} ${shortPath(path)}` });
    throw err;
  }
  return data;
}

function shortPath(path) {
  const p = String(path).split('?')[0];
  return p.length > 60 ? `…${p.slice(-58)}` : p;
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, opts) => request('POST', path, { ...opts, body });

// Fill `{name}` placeholders from `values` (URL-encoded), e.g. 'cancel/{sid}/{job_id}'.
export function fillPath(template, values) {
  return String(template).replace(/\{(\w+)\}/g, (m, k) => {
    const v = values ? values[k] : undefined;
    if (v === undefined || v === null) throw new Error(`no value for {${k}} in '${template}'`);
    return encodeURIComponent(String(v));
  });
}

// The API of one plugin instance on one edge, with its session.
export class PluginApi {
  constructor(edge, plugin, sessionArgs = {}) {
    this.edge = edge;
    this.plugin = plugin;
    this.sessionArgs = sessionArgs;
    this.key = `${SID_PREFIX}${edge}/${plugin}`;
    this._sid = null;
    this._registering = null;
    this.onNewSession = null;  // callback(sid, registerAnswer)
  }

  path(rest) {
    return `${encodeURIComponent(this.edge)}/${encodeURIComponent(this.plugin)}/${rest}`;
  }

  // The session id, registering one if needed (kept in sessionStorage so a reload keeps it).
  async sid() {
    if (this._sid) return this._sid;
    try {
      const kept = sessionStorage.getItem(this.key);
      if (kept) { this._sid = kept; return kept; }
    } catch (e) { /* ignore */ }
    return this.newSession();
  }

  newSession() {
    if (!this._registering) {
      this._registering = post(this.path('register_session'), this.sessionArgs)
        .then((ans) => {
          this._sid = ans.sid;
          try { sessionStorage.setItem(this.key, ans.sid); } catch (e) { /* ignore */ }
          if (this.onNewSession) this.onNewSession(ans.sid, ans);
          return ans.sid;
        })
        .finally(() => { this._registering = null; });
    }
    return this._registering;
  }

  forgetSession() {
    this._sid = null;
    try { sessionStorage.removeItem(this.key); } catch (e) { /* ignore */ }
  }

  // call('GET', 'status/{sid}/{job_id}', {values: {job_id}, query, body, quiet})
  async call(method, template, { values = {}, query, body, quiet = false, signal } = {}) {
    const needsSid = template.includes('{sid}');
    const sid = needsSid ? await this.sid() : undefined;
    try {
      return await request(method, this.path(fillPath(template, { ...values, sid })),
        { query, body, signal, quiet: quiet || needsSid });
    } catch (err) {
      const sessionGone = needsSid && err instanceof ApiError && (err.status === 404 || err.status === 410)
        && String(err.detail).includes(sid);
      if (sessionGone) {
        this.forgetSession();
        const fresh = await this.newSession();
        return request(method, this.path(fillPath(template, { ...values, sid: fresh })), { query, body, signal, quiet });
      }
      if (needsSid && !quiet && err instanceof ApiError) {
        toast(err.detail, 'error', { title: `${err.status || ''} — ${method} ${this.plugin}/${template.split('/')[0]}` });
      }
      throw err;
    }
  }

  get(template, opts) { return this.call('GET', template, opts); }
  post(template, body, opts) { return this.call('POST', template, { ...opts, body }); }
}
