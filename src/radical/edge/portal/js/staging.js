// staging: a file browser of the edge's allowed directories -- browse, upload (chunked, with
// progress and a sha256 per chunk), download, new folder, delete (after confirmation).
// `#/e/EDGE/staging?path=/abs/dir` opens that directory (psij job pages link here).
import { h, add, replace, card, table, fmtBytes, fmtTime, button } from './dom.js';
import { pluginHeader } from './pages.js';
import { url, authHeaders, ApiError } from './api.js';
import { loading, errorBox, toast, confirmDialog } from './ui.js';
import { errorSlot } from './forms.js';

// Below the bridge's default 64 MiB body limit; small enough for a smooth progress bar.
const UPLOAD_CHUNK = 8 * 1024 * 1024;

// A link to this page opened at `path` on `edge` (for other pages, e.g. psij jobs).
export function browseHref(edge, path, plugin = 'staging') {
  return `#/e/${encodeURIComponent(edge)}/${encodeURIComponent(plugin)}?${new URLSearchParams({ path })}`;
}

function joinPath(dir, name) {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

function parentOf(path) {
  const p = path.replace(/\/+$/, '');
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

async function sha256Hex(buf) {
  if (!(window.crypto && crypto.subtle)) return null;  // not a secure context: skip the check
  const d = await crypto.subtle.digest('SHA-256', buf);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function failure(res, what) {
  let detail = res.statusText || 'request failed';
  try { const j = await res.json(); if (j && typeof j.detail === 'string') detail = j.detail; } catch (e) { /* not JSON */ }
  return new ApiError(res.status, detail, what);
}

export default async function mount(ctx) {
  const state = { path: null, roots: [] };
  // errors stay in the card where they happened until dismissed or the next try
  const uploadErr = errorSlot('staging-upload-error');
  const folderErr = errorSlot('staging-folder-error');
  const pathInput = h('input', { type: 'text', class: 'path-input', name: 'path',
    'aria-label': 'Folder to browse', dataset: { testid: 'staging-path' }, placeholder: '/absolute/path' });
  const listing = h('div', { dataset: { testid: 'staging-listing' } }, loading());
  const progress = h('progress', { max: 100, value: 0, hidden: true, dataset: { testid: 'staging-progress' } });
  const progressText = h('span', { class: 'muted', dataset: { testid: 'staging-progress-text' } });
  const fileInput = h('input', { type: 'file', name: 'file', 'aria-label': 'File to upload',
    dataset: { testid: 'staging-file' } });
  const folderInput = h('input', { type: 'text', name: 'folder', placeholder: 'new folder name',
    'aria-label': 'New folder name',
    dataset: { testid: 'staging-folder' } });

  const raw = async (method, route, query, init = {}) => {
    const sid = await ctx.api.sid();
    const res = await fetch(url(ctx.api.path(`${route}/${encodeURIComponent(sid)}`), query),
      { method, cache: 'no-store', ...init, headers: { ...authHeaders(), ...(init.headers || {}) } });
    if (!res.ok) throw await failure(res, route);
    return res;
  };

  const open = async (path) => {
    try {
      const data = await ctx.api.post('list/{sid}', { path }, { quiet: true });  // errors: in the listing
      state.path = data.path;
      pathInput.value = data.path;
      const rows = Array.isArray(data.entries) ? data.entries : [];
      replace(listing, table([
        { label: 'Name', get: (e) => (e.type === 'dir'
          ? h('a', { href: '#', dataset: { testid: 'staging-dir' }, onclick: (ev) => { ev.preventDefault(); open(joinPath(state.path, e.name)); } }, `📁 ${e.name}`)
          : h('span', { dataset: { testid: 'staging-file-name' } }, `📄 ${e.name}`)) },
        { label: 'Size', get: (e) => (e.type === 'file' ? fmtBytes(e.size) : '—') },
        { label: 'Modified', get: (e) => (e.mtime ? fmtTime(e.mtime) : '—') },
        { label: '', get: (e) => h('span', { class: 'actions' },
          e.type === 'file' ? button('⬇', () => download(joinPath(state.path, e.name), e.name), { title: 'Download', testid: 'staging-download' }) : null,
          button('🗑', () => remove(joinPath(state.path, e.name), e.type), { style: 'danger', title: 'Delete', testid: 'staging-delete' })) },
      ], rows, { empty: 'This folder is empty.', rowProps: (e) => ({ dataset: { name: e.name, type: e.type } }) }));
    } catch (err) {
      replace(listing, errorBox(err));
    }
  };

  const download = async (path, name) => {
    try {
      const res = await raw('GET', 'download', { path });
      const blob = await res.blob();
      const a = document.createElement('a');  // blob: URLs: set directly, never as markup
      a.href = URL.createObjectURL(blob);
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (err) {
      toast(err.detail || String(err), 'error', { title: `download ${name}` });
    }
  };

  const upload = async () => {
    const file = fileInput.files && fileInput.files[0];
    uploadErr.clear();
    if (!file || !state.path) { uploadErr.show('choose a file first'); return; }
    const target = joinPath(state.path, file.name);
    let overwrite = false;
    if (Array.from(listing.querySelectorAll('tr[data-name]')).some((tr) => tr.dataset.name === file.name)) {
      overwrite = await confirmDialog({ title: 'Replace file?',
        message: `${target} exists on edge '${ctx.edge}'. Replace it with the chosen file?`,
        confirmLabel: 'Replace' });
      if (!overwrite) return;
    }
    progress.hidden = false;
    progress.value = 0;
    try {
      let offset = 0;
      do {
        const chunk = await file.slice(offset, offset + UPLOAD_CHUNK).arrayBuffer();
        const sha256 = await sha256Hex(chunk);
        await raw('POST', 'upload', { path: target, offset, sha256, overwrite: offset === 0 ? String(overwrite) : undefined },
          { body: chunk, headers: { 'Content-Type': 'application/octet-stream' } });
        offset += chunk.byteLength;
        progress.value = file.size ? Math.round((100 * offset) / file.size) : 100;
        progressText.textContent = `${fmtBytes(offset)} / ${fmtBytes(file.size)}`;
      } while (offset < file.size);
      progressText.textContent = `uploaded ${file.name} (${fmtBytes(file.size)})`;
      toast(`uploaded ${file.name}`, 'success');
      await open(state.path);
    } catch (err) {
      progressText.textContent = '';
      uploadErr.show(err, `${file.name} not uploaded:`);
    } finally {
      progress.hidden = true;
    }
  };

  const mkdir = async () => {
    const name = folderInput.value.trim();
    folderErr.clear();
    if (!name || name.includes('/')) { folderErr.show('a folder name without slashes, please'); return; }
    try {
      await ctx.api.post('mkdir/{sid}', { path: joinPath(state.path, name), parents: false }, { quiet: true });
      folderInput.value = '';
      await open(state.path);
    } catch (err) { folderErr.show(err, `'${name}' not created:`); }
  };

  const remove = async (path, type) => {
    const ok = await confirmDialog({ title: `Delete ${type === 'dir' ? 'folder' : 'file'}?`,
      message: `${path} will be deleted on edge '${ctx.edge}'${type === 'dir' ? ' with everything in it' : ''}. This cannot be undone.`,
      confirmLabel: 'Delete' });
    if (!ok) return;
    try {
      await ctx.api.post('delete/{sid}', { path, recursive: type === 'dir' });
      await open(state.path);
    } catch (err) { /* the API layer showed it */ }
  };

  const go = h('form', { class: 'inline-form', onsubmit: (ev) => { ev.preventDefault(); open(pathInput.value.trim()); } },
    button('⬆ Up', () => open(parentOf(state.path || '/')), { testid: 'staging-up' }),
    pathInput, h('button', { type: 'submit', class: 'btn' }, 'Open'));
  const rootsBar = h('p', { class: 'muted' });

  add(ctx.el,
    pluginHeader(ctx, { onRefresh: () => open(state.path) }),
    card('📂 Browse', rootsBar, go, listing),
    card('⬆ Upload',
      h('div', { class: 'inline-form' }, fileInput,
        button('Upload', upload, { style: 'primary', testid: 'staging-upload', needsBridge: true })),
      h('div', {}, progress, ' ', progressText), uploadErr.el),
    card('➕ New folder',
      h('div', { class: 'inline-form' }, folderInput,
        button('Create', mkdir, { testid: 'staging-mkdir', needsBridge: true })), folderErr.el));

  try {
    const r = await ctx.api.get('roots');
    state.roots = Array.isArray(r.roots) ? r.roots : [];
  } catch (e) { /* shown by the API layer */ }
  replace(rootsBar, 'Allowed: ', state.roots.map((root, i) => [i ? ', ' : '',
    h('a', { href: '#', dataset: { testid: 'staging-root' }, onclick: (ev) => { ev.preventDefault(); open(root); } }, root)]));
  await open((ctx.query && ctx.query.path) || state.roots[0] || '/');
}
