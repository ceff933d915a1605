/**
 * The live page as HTML, complete without JavaScript (curl reads it): the RFC 9293 state
 * diagram as SVG with its counts, the connections table, a story's text ladder, the counters.
 * /live/app.js then keeps it up to date from the event stream.
 */
import type { ConnRow } from './live.js';

/** A state box of the diagram: centre and label. CLOSED appears twice, as in RFC 9293 Figure 5. */
interface StateBox {
  id: string;
  state: string;
  x: number;
  y: number;
}

const BOX_W = 132;
const BOX_H = 34;

const BOXES: StateBox[] = [
  { id: 'closed', state: 'CLOSED', x: 380, y: 30 },
  { id: 'listen', state: 'LISTEN', x: 380, y: 125 },
  { id: 'synrcvd', state: 'SYN-RECEIVED', x: 130, y: 220 },
  { id: 'synsent', state: 'SYN-SENT', x: 630, y: 220 },
  { id: 'estab', state: 'ESTABLISHED', x: 380, y: 315 },
  { id: 'finwait1', state: 'FIN-WAIT-1', x: 130, y: 420 },
  { id: 'closewait', state: 'CLOSE-WAIT', x: 630, y: 420 },
  { id: 'finwait2', state: 'FIN-WAIT-2', x: 130, y: 530 },
  { id: 'closing', state: 'CLOSING', x: 380, y: 530 },
  { id: 'lastack', state: 'LAST-ACK', x: 630, y: 530 },
  { id: 'timewait', state: 'TIME-WAIT', x: 380, y: 640 },
  { id: 'closed2', state: 'CLOSED', x: 630, y: 640 },
];

/** The arrows of RFC 9293 Figure 5 (and FIN-WAIT-1 → TIME-WAIT on FIN+ACK), with their events. */
export const DIAGRAM_ARROWS: Array<{ from: string; to: string; label: string; at?: number }> = [
  { from: 'closed', to: 'listen', label: 'passive OPEN' },
  { from: 'closed', to: 'synsent', label: 'active OPEN / snd SYN', at: 0.4 },
  { from: 'listen', to: 'synrcvd', label: 'rcv SYN / snd SYN,ACK' },
  { from: 'listen', to: 'synsent', label: 'SEND / snd SYN' },
  { from: 'synrcvd', to: 'listen', label: 'rcv RST' },
  { from: 'synsent', to: 'synrcvd', label: 'rcv SYN / snd ACK' },
  { from: 'synrcvd', to: 'estab', label: 'rcv ACK of SYN' },
  { from: 'synsent', to: 'estab', label: 'rcv SYN,ACK / snd ACK' },
  { from: 'synrcvd', to: 'finwait1', label: 'CLOSE / snd FIN' },
  { from: 'estab', to: 'finwait1', label: 'CLOSE / snd FIN' },
  { from: 'estab', to: 'closewait', label: 'rcv FIN / snd ACK' },
  { from: 'finwait1', to: 'finwait2', label: 'rcv ACK of FIN' },
  { from: 'finwait1', to: 'closing', label: 'rcv FIN / snd ACK' },
  { from: 'finwait1', to: 'timewait', label: 'rcv FIN,ACK' },
  { from: 'closewait', to: 'lastack', label: 'CLOSE / snd FIN' },
  { from: 'finwait2', to: 'timewait', label: 'rcv FIN / snd ACK' },
  { from: 'closing', to: 'timewait', label: 'rcv ACK of FIN' },
  { from: 'lastack', to: 'closed2', label: 'rcv ACK of FIN' },
  { from: 'timewait', to: 'closed2', label: 'timeout = 2 MSL' },
];

const box = (id: string): StateBox => BOXES.find((b) => b.id === id)!;

/** "FROM>TO" in state names, as the watcher counts them. */
export function arrowKey(a: { from: string; to: string }): string {
  return `${box(a.from).state}>${box(a.to).state}`;
}

/** Where the segment from the centre of `a` towards (tx, ty) leaves a's box. */
function edgePoint(a: StateBox, tx: number, ty: number): [number, number] {
  const dx = tx - a.x;
  const dy = ty - a.y;
  const sx = dx === 0 ? Infinity : BOX_W / 2 / Math.abs(dx);
  const sy = dy === 0 ? Infinity : BOX_H / 2 / Math.abs(dy);
  const s = Math.min(sx, sy);
  return [a.x + dx * s, a.y + dy * s];
}

export function renderDiagram(arrows: ReadonlyMap<string, number>, states: Record<string, number>): string {
  const parts: string[] = [];
  parts.push(
    '<svg id="diagram" viewBox="0 0 760 675" role="img" aria-labelledby="diagram-title">',
    '<title id="diagram-title">TCP state diagram (RFC 9293 Figure 5): connections per state and transitions taken</title>',
    '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">' +
      '<path d="M0,0 L10,5 L0,10 z" fill="currentColor"/></marker></defs>',
  );
  for (const a of DIAGRAM_ARROWS) {
    const from = box(a.from);
    const to = box(a.to);
    // An arrow with a reverse twin is shifted sideways so the two do not overlap.
    const twin = DIAGRAM_ARROWS.some((b) => b.from === a.to && b.to === a.from);
    const len = Math.hypot(to.x - from.x, to.y - from.y);
    const off = twin ? 7 : 0;
    const nx = (-(to.y - from.y) / len) * off;
    const ny = ((to.x - from.x) / len) * off;
    const [x1, y1] = edgePoint(from, to.x, to.y);
    const [x2, y2] = edgePoint(to, from.x, from.y);
    const key = arrowKey(a);
    const n = arrows.get(key) ?? 0;
    // Twins' labels go to their outer sides.
    const at = a.at ?? 0.5; // where along the arrow its label sits
    const mx = x1 + (x2 - x1) * at + nx * (twin ? 2.6 : 0);
    const my = y1 + (y2 - y1) * at + ny * (twin ? 2.6 : 0);
    parts.push(
      `<g class="arrow" data-arrow="${key}"><line x1="${f(x1 + nx)}" y1="${f(y1 + ny)}" x2="${f(x2 + nx)}" y2="${f(y2 + ny)}" marker-end="url(#head)"/>` +
        `<text class="ev" x="${f(mx)}" y="${f(my - 3)}">${esc(a.label)}</text>` +
        `<text class="count" x="${f(mx)}" y="${f(my + 13)}">${n}</text></g>`,
    );
  }
  for (const b of BOXES) {
    const n = states[b.state] ?? 0;
    parts.push(
      `<g class="state" data-state="${b.state}"><rect x="${b.x - BOX_W / 2}" y="${b.y - BOX_H / 2}" width="${BOX_W}" height="${BOX_H}" rx="6"/>` +
        `<text class="name" x="${b.x}" y="${b.y - 1}">${b.state}</text><text class="count" x="${b.x}" y="${b.y + 14}">${n}</text></g>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** Transitions that are not arrows of the figure (resets, aborts), as a list. */
export function otherTransitions(arrows: ReadonlyMap<string, number>): Array<[string, number]> {
  const drawn = new Set(DIAGRAM_ARROWS.map(arrowKey));
  return [...arrows].filter(([k]) => !drawn.has(k)).sort(([a], [b]) => (a < b ? -1 : 1));
}

export const TABLE_COLUMNS: Array<[keyof ConnRow, string]> = [
  ['id', '#'],
  ['state', 'state'],
  ['remote', 'remote'],
  ['local', 'local'],
  ['sndUna', 'SND.UNA'],
  ['sndNxt', 'SND.NXT'],
  ['rcvNxt', 'RCV.NXT'],
  ['sndWnd', 'SND.WND'],
  ['rcvWnd', 'RCV.WND'],
  ['srtt', 'srtt ms'],
  ['rto', 'rto ms'],
  ['cwnd', 'cwnd'],
  ['ssthresh', 'ssthresh'],
  ['retransmits', 'retrans'],
];

export interface PageModel {
  addr: string;
  uptime: string;
  details: boolean;
  hostAddr: string;
  arrows: ReadonlyMap<string, number>;
  states: Record<string, number>;
  total: number;
  table: { rows: ConnRow[]; total: number; offset: number; size: number };
  stats: Array<[string, number]>;
  /** The text ladder of the story asked for with ?story=ID, if any. */
  story?: { id: number; title: string; text: string } | undefined;
  watch: { stories: number; bytes: number };
}

export function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(1);
  return esc(String(v));
}

export function renderRow(r: ConnRow): string {
  let row = `<tr${r.closed ? ' class="closed"' : ''}${r.id !== undefined ? ` data-id="${r.id}" tabindex="0"` : ''}>`;
  for (const [k] of TABLE_COLUMNS) row += `<td>${cell(r[k])}</td>`;
  return row + '</tr>';
}

export function renderPage(m: PageModel): string {
  const summary = Object.entries(m.states)
    .map(([s, n]) => `${n} ${esc(s)}`)
    .join(', ');
  const others = otherTransitions(m.arrows);
  const table = m.details
    ? [
        '<div class="pager"><button type="button" id="prev">◀ newer</button> <span id="range">' +
          `${m.table.total === 0 ? 0 : m.table.offset + 1}–${m.table.offset + m.table.rows.length} of ${m.table.total}` +
          '</span> <button type="button" id="next">older ▶</button> <span class="hint">Click a row for its story; click a heading to sort. Grey: TIME-WAIT or closed.</span></div>',
        '<div class="scroll"><table id="conns"><thead><tr>' +
          TABLE_COLUMNS.map(([k, label]) => `<th scope="col"><button type="button" data-sort="${k}">${esc(label)}</button></th>`).join('') +
          '</tr></thead><tbody>',
        ...(m.table.rows.length ? m.table.rows.map(renderRow) : [`<tr><td colspan="${TABLE_COLUMNS.length}">no connections</td></tr>`]),
        '</tbody></table></div>',
      ]
    : [
        `<p id="conns-hidden">Connection details (addresses, sequence numbers) are shown to the host side of the link (${esc(m.hostAddr)}) and --admin addresses only; you see the counts.</p>`,
      ];
  const story = m.story
    ? `<h3 id="story-title">${esc(m.story.title)}</h3><pre id="ladder-text" aria-label="ladder as text">${esc(m.story.text)}</pre>`
    : '<h3 id="story-title">No connection selected</h3><pre id="ladder-text" aria-label="ladder as text"></pre>';
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>netstack ${esc(m.addr)} — live</title>`,
    '<link rel="stylesheet" href="/live/app.css">',
    '<link rel="icon" href="data:,">',
    '</head>',
    `<body data-details="${m.details ? '1' : '0'}">`,
    '<header>',
    '<h1>netstack</h1>',
    `<p id="summary">Address <b>${esc(m.addr)}</b>, up ${esc(m.uptime)}, connections: <span id="total">${m.total}</span>` +
      `<span id="by-state">${summary ? ` (${summary})` : ''}</span>. <span id="live" class="off">static page</span></p>`,
    '</header>',
    '<main>',
    '<div class="left">',
    '<section id="diagram-section" aria-labelledby="h-diagram">',
    '<h2 id="h-diagram">State diagram</h2>',
    '<p class="hint">Boxes: connections in each state now. Arrows: transitions taken since start; an arrow flashes when one fires.</p>',
    renderDiagram(m.arrows, m.states),
    `<p id="others">${others.length ? 'Other transitions (resets, aborts): ' + others.map(([k, n]) => `${esc(k.replace('>', ' → '))} ${n}`).join(', ') : 'No transitions outside the figure.'}</p>`,
    '</section>',
    '</div>',
    '<div class="right">',
    '<section id="conns-section" aria-labelledby="h-conns">',
    '<h2 id="h-conns">Connections</h2>',
    ...table,
    '</section>',
    m.details
      ? [
          '<section id="story" aria-labelledby="story-title">',
          '<h2>One connection</h2>',
          story,
          '<label><input type="checkbox" id="absolute"> absolute sequence numbers</label>',
          '<div id="ladder" class="ladder"></div>',
          '<div id="graphs"><figure><figcaption>Time–sequence (Stevens): data sent (red: retransmitted), ACKs, window edge</figcaption><div id="g-tseq"></div></figure>' +
            '<figure><figcaption>cwnd and ssthresh (bytes)</figcaption><div id="g-cwnd"></div></figure>' +
            '<figure><figcaption>srtt and rto (ms)</figcaption><div id="g-rtt"></div></figure></div>',
          '</section>',
        ].join('\n')
      : '',
    '</div>',
    '<section id="counters" aria-labelledby="h-counters">',
    '<h2 id="h-counters">Counters</h2>',
    `<p>The live view holds <span id="watch-stories">${m.watch.stories}</span> connection stories in <span id="watch-bytes">${kib(m.watch.bytes)}</span>. Non-zero counters when the page was loaded; <a href="/metrics">/metrics</a> has them all.</p>`,
    '<table id="stats"><tr><th>counter</th><th>value</th></tr>',
    ...m.stats.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${cell(v)}</td></tr>`),
    '</table>',
    '<p>Also: <a href="/connections">/connections</a> (JSON), <a href="/metrics">/metrics</a> (Prometheus), ' +
      '<a href="/bytes/1048576">/bytes/N</a> (N bytes), POST /echo, /live/story/ID.txt (a ladder as text), ' +
      '<code>netstack trace</code> (transitions in a terminal).</p>',
    '</section>',
    '</main>',
    '<script src="/live/app.js" defer></script>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

export function kib(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function f(v: number): string {
  return v.toFixed(1);
}

export function esc(s: string): string {
  return /[&<>"']/.test(s) ? s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`) : s;
}
