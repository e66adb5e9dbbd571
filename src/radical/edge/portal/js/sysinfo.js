// sysinfo: cards for system, CPU, memory, GPUs, disks and network. Live by default (polled
// every few seconds; the choice is remembered in localStorage), with sparklines of the last
// samples, the load relative to the cores, and each disk's available space.
import { h, add, replace, card, kvList, bar, table, fmtBytes, fmtDuration, fmtTime, fmtValue } from './dom.js';
import { pluginHeader } from './pages.js';
import { loading, errorBox } from './ui.js';

const AUTO_SECONDS = 3;
const HISTORY = 60;  // samples kept per series (3 minutes at the default interval)
const LIVE_KEY = 'radical_edge.sysinfo.live';
const SVG = 'http://www.w3.org/2000/svg';

// A small line chart of `values` (0..max); the newest on the right.
export function sparkline(values, { max = 100, width = 120, height = 24, label = '' } = {}) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.dataset.points = String(values.length);
  const top = Math.max(max, ...values, 1e-9);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const x0 = values.length > 1 ? 0 : width;
  const pts = values.map((v, i) => `${(x0 + i * step).toFixed(1)},${(height - 1 - ((height - 2) * Math.max(0, v)) / top).toFixed(1)}`);
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', pts.join(' '));
  svg.append(line);
  return svg;
}

function liveDefault() {
  try { return localStorage.getItem(LIVE_KEY) !== 'off'; } catch (e) { return true; }
}

function remember(on) {
  try { localStorage.setItem(LIVE_KEY, on ? 'on' : 'off'); } catch (e) { /* private mode */ }
}

function systemCard(s = {}, home) {
  return card('🖥️ System', kvList([
    ['Hostname', s.hostname],
    ['OS', s.os],
    ['Kernel', s.kernel],
    ['Architecture', s.arch],
    ['Uptime', fmtDuration(s.uptime)],
    ['Booted', s.boot_time ? fmtTime(s.boot_time) : '—'],
    ['User', s.user],
    ['Home', home],
  ]));
}

// Load average relative to the logical cores: 100 % = every core busy.
function loadShare(c) {
  const cores = Number(c.cores_logical) || Number(c.cores_physical) || 0;
  const l1 = Array.isArray(c.load_avg) ? Number(c.load_avg[0]) : NaN;
  return cores && Number.isFinite(l1) ? (100 * l1) / cores : null;
}

function cpuCard(c = {}, hist = {}) {
  const load = Array.isArray(c.load_avg) ? c.load_avg.map((x) => Number(x).toFixed(2)).join(' / ') : '—';
  const share = loadShare(c);
  const cores = Number(c.cores_logical) || Number(c.cores_physical) || 0;
  return card('⚙️ CPU', kvList([
    ['Model', c.model],
    ['Vendor', c.vendor],
    ['Cores', `${fmtValue(c.cores_physical)} physical / ${fmtValue(c.cores_logical)} logical`],
    ['Frequency', c.freq_mhz ? `${Math.round(c.freq_mhz)} MHz` : '—'],
    ['Load (1/5/15 min)', h('span', { dataset: { testid: 'load' } }, load,
      share === null ? '' : ` — ${Math.round(share)} % of ${cores} core${cores === 1 ? '' : 's'}`)],
    ['Load / cores', share === null ? '—' : h('span', { class: 'spark-row' },
      bar(Math.min(100, share), `${Math.round(share)} %`), ' ',
      sparkline(hist.load || [], { label: 'load per core, recent samples' }))],
    ['Utilisation', h('span', { class: 'spark-row' }, bar(c.percent), ' ',
      sparkline(hist.cpu || [], { label: 'CPU utilisation, recent samples' }))],
  ]));
}

function memoryCard(m = {}, hist = {}) {
  return card('🧠 Memory', kvList([
    ['Total', fmtBytes(m.total)],
    ['Used', fmtBytes(m.used)],
    ['Available', fmtBytes(m.available)],
    ['Utilisation', h('span', { class: 'spark-row' },
      bar(m.percent, `${fmtValue(m.percent)} % of ${fmtBytes(m.total)}`), ' ',
      sparkline(hist.mem || [], { label: 'memory utilisation, recent samples' }))],
  ]));
}

function gpuCard(gpus) {
  return card('🎮 GPUs', table([
    { label: 'ID', get: (g) => g.id },
    { label: 'Name', get: (g) => g.name },
    { label: 'Vendor', get: (g) => g.vendor },
    { label: 'GPU util', get: (g) => (g.util_gpu === null || g.util_gpu === undefined ? '—' : bar(g.util_gpu)) },
    { label: 'Memory', get: (g) => (g.mem_total ? bar(100 * (g.mem_used || 0) / g.mem_total, `${fmtValue(g.mem_used)} / ${fmtValue(g.mem_total)} MiB`) : '—') },
  ], gpus, { empty: 'No GPUs detected.' }));
}

function diskCard(disks) {
  return card('💾 Disks', table([
    { label: 'Mount', get: (d) => d.mount },
    { label: 'Device', get: (d) => d.device },
    { label: 'FS', get: (d) => d.fstype },
    { label: 'Type', get: (d) => h('span', { class: ['tag', d.type === 'shared' ? 'tag-shared' : 'tag-local'] }, fmtValue(d.type)) },
    { label: 'Size', get: (d) => fmtBytes(d.total) },
    { label: 'Used', get: (d) => bar(d.percent, `${fmtBytes(d.used)} (${fmtValue(d.percent)} %)`) },
    { label: 'Available', get: (d) => (d.available === undefined || d.available === null ? '—'
      : h('span', { dataset: { testid: 'disk-available' } }, fmtBytes(d.available))) },
  ], disks, { empty: 'No disks reported.' }));
}

function networkCard(nics) {
  return card('🌐 Network', table([
    { label: 'Interface', get: (n) => n.interface },
    { label: 'IP', get: (n) => n.ip },
    { label: 'MAC', get: (n) => n.mac },
    { label: 'Speed', get: (n) => (n.speed_mbps ? `${n.speed_mbps} Mb/s` : '—') },
    { label: 'Received', get: (n) => fmtBytes(n.rx_bytes) },
    { label: 'Sent', get: (n) => fmtBytes(n.tx_bytes) },
  ], nics, { empty: 'No interfaces reported.' }));
}

export default async function mount(ctx) {
  const body = h('div', { class: 'sysinfo', dataset: { testid: 'sysinfo' } }, loading('Collecting metrics…'));
  const stamp = h('span', { class: 'muted stamp', role: 'status' });
  const hist = { cpu: [], load: [], mem: [] };
  let home = null;
  let timer = null;
  let busy = false;

  const push = (name, v) => {
    if (v === null || v === undefined || !Number.isFinite(Number(v))) return;
    hist[name].push(Number(v));
    if (hist[name].length > HISTORY) hist[name].shift();
  };

  const refresh = async () => {
    if (busy) return;
    busy = true;
    try {
      const m = await ctx.api.get('metrics/{sid}', { quiet: !!timer });
      push('cpu', (m.cpu || {}).percent);
      push('load', loadShare(m.cpu || {}));
      push('mem', (m.memory || {}).percent);
      replace(body,
        h('div', { class: 'cards' }, systemCard(m.system, home), cpuCard(m.cpu, hist), memoryCard(m.memory, hist)),
        gpuCard(Array.isArray(m.gpus) ? m.gpus : []),
        diskCard(Array.isArray(m.disks) ? m.disks : []),
        networkCard(Array.isArray(m.network) ? m.network : []));
      stamp.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (!body.querySelector('.cards')) replace(body, errorBox(e));
      else stamp.textContent = `update failed (${e.detail || e.message || e}); showing the last values`;
    } finally {
      busy = false;
    }
  };

  const setLive = (on) => {
    clearInterval(timer);
    timer = on ? setInterval(() => { if (!document.hidden) refresh(); }, AUTO_SECONDS * 1000) : null;
  };
  const auto = h('input', { type: 'checkbox', checked: liveDefault(), dataset: { testid: 'auto-refresh' },
    onchange: () => { remember(auto.checked); setLive(auto.checked); if (auto.checked) refresh(); } });
  ctx.onDispose(() => clearInterval(timer));

  add(ctx.el,
    pluginHeader(ctx, { onRefresh: refresh,
      extra: [stamp, h('label', { class: 'check' }, auto, ` live (every ${AUTO_SECONDS} s)`)] }),
    body);
  try {
    const hd = await ctx.api.get('homedir', { quiet: true });
    home = hd && (hd.home || hd.homedir || hd.path || Object.values(hd)[0]);
  } catch (e) { /* optional */ }
  await refresh();
  setLive(auto.checked);
}
