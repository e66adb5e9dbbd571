// sysinfo: cards for system, CPU, memory, GPUs, disks and network; refresh on demand or
// every few seconds.
import { h, add, replace, card, kvList, bar, table, fmtBytes, fmtDuration, fmtTime, fmtValue } from './dom.js';
import { pluginHeader } from './pages.js';
import { loading, errorBox } from './ui.js';

const AUTO_SECONDS = 5;

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

function cpuCard(c = {}) {
  const load = Array.isArray(c.load_avg) ? c.load_avg.map((x) => Number(x).toFixed(2)).join(' / ') : '—';
  return card('⚙️ CPU', kvList([
    ['Model', c.model],
    ['Vendor', c.vendor],
    ['Cores', `${fmtValue(c.cores_physical)} physical / ${fmtValue(c.cores_logical)} logical`],
    ['Frequency', c.freq_mhz ? `${Math.round(c.freq_mhz)} MHz` : '—'],
    ['Load (1/5/15 min)', load],
    ['Utilisation', bar(c.percent)],
  ]));
}

function memoryCard(m = {}) {
  return card('🧠 Memory', kvList([
    ['Total', fmtBytes(m.total)],
    ['Used', fmtBytes(m.used)],
    ['Available', fmtBytes(m.available)],
    ['Utilisation', bar(m.percent, `${fmtValue(m.percent)} % of ${fmtBytes(m.total)}`)],
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
  const stamp = h('span', { class: 'muted stamp' });
  let home = null;
  let timer = null;
  let busy = false;

  const refresh = async () => {
    if (busy) return;
    busy = true;
    try {
      const m = await ctx.api.get('metrics/{sid}');
      replace(body,
        h('div', { class: 'cards' }, systemCard(m.system, home), cpuCard(m.cpu), memoryCard(m.memory)),
        gpuCard(Array.isArray(m.gpus) ? m.gpus : []),
        diskCard(Array.isArray(m.disks) ? m.disks : []),
        networkCard(Array.isArray(m.network) ? m.network : []));
      stamp.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (!body.querySelector('.cards')) replace(body, errorBox(e));
    } finally {
      busy = false;
    }
  };

  const auto = h('input', { type: 'checkbox', dataset: { testid: 'auto-refresh' },
    onchange: () => {
      clearInterval(timer);
      timer = auto.checked ? setInterval(refresh, AUTO_SECONDS * 1000) : null;
    } });
  ctx.onDispose(() => clearInterval(timer));

  add(ctx.el,
    pluginHeader(ctx, { onRefresh: refresh,
      extra: [stamp, h('label', { class: 'check' }, auto, ` auto (${AUTO_SECONDS} s)`)] }),
    body);
  try {
    const hd = await ctx.api.get('homedir', { quiet: true });
    home = hd && (hd.home || hd.homedir || hd.path || Object.values(hd)[0]);
  } catch (e) { /* optional */ }
  await refresh();
}
