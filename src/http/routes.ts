/**
 * The web application of `netstack up`: a status page, test endpoints for curl and
 * benchmarks, and optionally static files. It sees the stack only through StackView,
 * which the CLI supplies.
 *
 *   GET  /             HTML status page: address, uptime, connections, counters
 *   GET  /bytes/N      N bytes, byte i = i mod 256 (N ≤ 2^40), streamed
 *   POST /echo         the request body, streamed back
 *   GET  /connections  JSON: connection counts, and a page of connections (?limit=&offset=)
 *   GET  /metrics      Prometheus text format 0.0.4
 *   GET  /anything     a file under --root, if given
 *
 * Connection details (4-tuples, exact sequence numbers) are shown only to requests from an
 * address that `canSeeDetails` admits (src/http/access.ts); everyone else sees counts.
 */
import type { CanSeeDetails } from './access.js';
import { splitTarget } from './parser.js';
import type { Handler, HttpRequest, HttpResponse } from './server.js';
import { createStaticHandler } from './static.js';
import type { ConnectionInfo as TcpConnectionInfo } from '../tcp/connection.js';

/** What the app needs from the stack, supplied by the CLI. */
export interface StackView {
  addr: string;
  /** Date.now() at start, ms. */
  startedAt: number;
  stats(): Record<string, number>;
  /** Connections, live ones first; at most `limit` when given, after skipping `offset`. */
  connections(limit?: number, offset?: number): Array<ConnectionInfo>;
  /** Connections per state; when absent it is counted from connections(). */
  connectionStates?(): Record<string, number>;
  /** Where the routes live: '' (at /), or e.g. '/_netstack' when a proxy owns the other paths. */
  base?: string;
  /** More to show (the proxy's upstreams): an HTML section for the page, families for /metrics. */
  extra?: { html(): string; metrics(): string };
  /** The ARP neighbour cache (TAP mode only). */
  neighbours?(): NeighbourView[];
}

/** One neighbour cache entry as the pages show it (src/link/arp.ts NeighbourInfo). */
export interface NeighbourView {
  ip: string;
  mac: string;
  state: string;
  queued: number;
  probes: number;
  confirmedAgoMs: number;
}

/** Connections per state from the view, cheaply when it keeps counts. */
function statesOf(view: StackView): Map<string, number> {
  if (view.connectionStates) return new Map(Object.entries(view.connectionStates()));
  const byState = new Map<string, number>();
  for (const c of view.connections()) byState.set(c.state, (byState.get(c.state) ?? 0) + 1);
  return byState;
}

/**
 * A connection as the pages show it: TCP's own ConnectionInfo, loosened so that another
 * source (the benchmark's kernel peer, tests) can fill it: any state name, and the
 * congestion fields optional.
 */
export type ConnectionInfo = Omit<TcpConnectionInfo, 'state' | 'cwnd' | 'ssthresh'> & {
  state: string;
  cwnd?: number;
  ssthresh?: number;
};

/** Largest N for /bytes/N. */
export const MAX_BYTES = 2 ** 40;
/** /echo streams, so its limit is about abuse, not memory. */
export const ECHO_MAX_BODY = 1024 * 1024 * 1024;
/** Other routes ignore bodies; a small one is tolerated, a big one gets 413. */
export const DEFAULT_MAX_BODY = 64 * 1024;
/** /connections: entries per page when no `limit` is given, and the largest `limit` allowed. */
export const CONNECTIONS_PAGE = 100;
export const CONNECTIONS_MAX_PAGE = 1000;

/** Options of the app beyond the stack view. */
export interface AppOptions {
  /** Serve the static files under this directory too. */
  root?: string | undefined;
  /**
   * Whether a request from this remote address may see connection details. Default: nobody
   * (`netstack up` admits its --host address and the --admin networks).
   */
  canSeeDetails?: CanSeeDetails | undefined;
  /** The live view (src/web), mounted in front of these routes. */
  live?: MountedApp | undefined;
}

/**
 * One 64 KiB buffer of the /bytes pattern. Its length is a multiple of 256, so every
 * full copy continues the pattern exactly; the tail is a prefix of it. Never modified,
 * so the same buffer can sit in the socket's queue many times over.
 */
const PATTERN: Buffer = (() => {
  const b = Buffer.allocUnsafe(64 * 1024);
  for (let i = 0; i < b.length; i++) b[i] = i & 0xff;
  return b;
})();

type RouteHandler = (req: HttpRequest, res: HttpResponse) => void | Promise<void>;

interface Route {
  /** The exact (percent-encoded) path, or a pattern for it. */
  path: string | RegExp;
  /** Methods served (HEAD listed beside GET: the server sends its head without the body). */
  methods: string[];
  handle: RouteHandler;
  maxBodyBytes?: number;
}

/** An app mounted in front of these routes (the live view, src/web): it answers its paths, else false. */
export type MountedApp = (req: HttpRequest, res: HttpResponse) => void | Promise<void> | false;

export function createNetstackApp(view: StackView, opts: AppOptions = {}): Handler {
  const canSee = opts.canSeeDetails ?? (() => false);
  const details = (req: HttpRequest) => req.remoteAddress !== undefined && canSee(req.remoteAddress);
  const routes: Route[] = [
    { path: '/', methods: ['GET', 'HEAD'], handle: (req, res) => statusPage(view, res, details(req)) },
    { path: /^\/bytes\/[^/]*$/, methods: ['GET', 'HEAD'], handle: sendBytes },
    { path: '/echo', methods: ['POST'], handle: echo, maxBodyBytes: ECHO_MAX_BODY },
    { path: '/connections', methods: ['GET', 'HEAD'], handle: (req, res) => connections(view, req, res, details(req)) },
    { path: '/metrics', methods: ['GET', 'HEAD'], handle: (req, res) => metrics(view, res) },
  ];
  const staticFiles = opts.root === undefined ? undefined : createStaticHandler(opts.root);

  const base = view.base ?? '';
  const find = (fullPath: string) => {
    if (!fullPath.startsWith(base)) return undefined;
    const path = fullPath.slice(base.length) || '/';
    return routes.find((r) => (typeof r.path === 'string' ? r.path === path : r.path.test(path)));
  };

  // Not async: a route that answers at once (most do) costs no promise; one that streams
  // returns its promise, and the server treats a throw and a rejection alike.
  const app = (req: HttpRequest, res: HttpResponse): void | Promise<void> => {
    const mounted = opts.live ? opts.live(req, res) : false;
    if (mounted !== false) return mounted;
    const route = find(req.path);
    if (route) {
      if (!route.methods.includes(req.method)) return methodNotAllowed(res, route.methods);
      return route.handle(req, res);
    }
    if (staticFiles) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(res, ['GET', 'HEAD']);
      return staticFiles(req, res);
    }
    return text(res, 404, `not found: ${req.path}\n`);
  };
  return Object.assign(app, {
    maxBodyBytes: (head: { target: string }) => find(splitTarget(head.target).path)?.maxBodyBytes ?? DEFAULT_MAX_BODY,
  });
}

// --- /bytes/N ---

function sendBytes(req: HttpRequest, res: HttpResponse): void | Promise<void> {
  const digits = req.path.slice(req.path.lastIndexOf('/') + 1);
  const n = /^\d{1,16}$/.test(digits) ? Number(digits) : NaN;
  if (!(n <= MAX_BYTES)) return text(res, 400, `N must be decimal digits and at most 2^40 = ${MAX_BYTES}\n`);
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('Content-Length', n);
  if (req.method === 'HEAD') return res.end();
  // Up to one pattern buffer: head and body in one write, no promise.
  if (n <= PATTERN.length) return res.end(PATTERN.subarray(0, n));
  return streamBytes(res, n);
}

async function streamBytes(res: HttpResponse, n: number): Promise<void> {
  for (let left = n; left > 0; ) {
    const k = Math.min(left, PATTERN.length);
    await res.write(k === PATTERN.length ? PATTERN : PATTERN.subarray(0, k));
    left -= k;
  }
  res.end();
}

// --- /echo ---

async function echo(req: HttpRequest, res: HttpResponse): Promise<void> {
  res.setHeader('Content-Type', req.headers.get('content-type') ?? 'application/octet-stream');
  // Same length framing as the request: Content-Length if it had one, else chunked.
  if (req.contentLength !== null) res.setHeader('Content-Length', req.contentLength);
  for await (const chunk of req.body) await res.write(chunk);
  res.end();
}

// --- /connections ---

/** What /connections answers: counts for everyone, and a page of connections for those allowed. */
export interface ConnectionsPage {
  /** Connections in all states. */
  total: number;
  /** Connections per state. */
  states: Record<string, number>;
  /** Present only for an address allowed to see details. */
  offset?: number;
  limit?: number;
  connections?: ConnectionInfo[];
  /** Present only when details are withheld: why. */
  note?: string;
}

export const DETAILS_WITHHELD =
  'connection details (addresses, sequence numbers) are shown only to the host side of the link and --admin networks';

/** `?limit=&offset=`: a page of at most CONNECTIONS_MAX_PAGE entries; an error message when malformed. */
export function parsePage(query: string): { limit: number; offset: number } | string {
  const params = new URLSearchParams(query);
  const number = (name: string, fallback: number): number | undefined => {
    const v = params.get(name);
    if (v === null || v === '') return fallback;
    return /^\d{1,9}$/.test(v) ? Number(v) : undefined;
  };
  const limit = number('limit', CONNECTIONS_PAGE);
  const offset = number('offset', 0);
  if (limit === undefined || limit < 1 || limit > CONNECTIONS_MAX_PAGE) return `limit must be an integer from 1 to ${CONNECTIONS_MAX_PAGE}\n`;
  if (offset === undefined) return 'offset must be a non-negative integer\n';
  return { limit, offset };
}

/**
 * The JSON of /connections. Its cost is the page, not the table: counts come from
 * connectionStates() and the stack skips `offset` entries without describing them.
 */
export function connectionsPage(view: StackView, page: { limit: number; offset: number }, details: boolean): ConnectionsPage {
  const byState = statesOf(view);
  let total = 0;
  for (const n of byState.values()) total += n;
  const states = Object.fromEntries(byState);
  if (!details) return { total, states, note: DETAILS_WITHHELD };
  return { total, states, offset: page.offset, limit: page.limit, connections: view.connections(page.limit, page.offset) };
}

function connections(view: StackView, req: HttpRequest, res: HttpResponse, details: boolean): void {
  const page = parsePage(req.query);
  if (typeof page === 'string') return text(res, 400, page);
  json(res, connectionsPage(view, page, details));
}

// --- /metrics ---

/** A stats key as a Prometheus counter name: `ip.in` and `ipIn` → `netstack_ip_in_total`. */
export function metricName(key: string): string {
  const snake = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_|_$/g, '')
    .toLowerCase();
  const name = `netstack_${snake || 'unnamed'}`;
  return name.endsWith('_total') ? name : `${name}_total`;
}

/** Prometheus text exposition format 0.0.4. */
export function renderMetrics(view: StackView, now: number): string {
  const lines: string[] = [];
  const family = (name: string, type: string, help: string, samples: string[]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples);
  };
  family('netstack_uptime_seconds', 'gauge', 'Seconds since the stack started.', [
    `netstack_uptime_seconds ${formatValue((now - view.startedAt) / 1000)}`,
  ]);

  // Two keys may sanitise to one name (ip.in, ipIn): a family must appear once, so sum them.
  const counters = new Map<string, { value: number; keys: string[] }>();
  for (const [key, value] of Object.entries(view.stats())) {
    const name = metricName(key);
    const c = counters.get(name);
    if (c) {
      c.value += value;
      c.keys.push(key);
    } else counters.set(name, { value, keys: [key] });
  }
  for (const [name, { value, keys }] of [...counters].sort(([a], [b]) => (a < b ? -1 : 1))) {
    family(name, 'counter', `Stack counter ${keys.join(', ').replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}.`, [
      `${name} ${formatValue(value)}`,
    ]);
  }

  const byState = statesOf(view);
  family(
    'netstack_connections',
    'gauge',
    'TCP connections by state.',
    [...byState].sort(([a], [b]) => (a < b ? -1 : 1)).map(([state, n]) => `netstack_connections{state="${labelValue(state)}"} ${n}`),
  );
  if (view.neighbours) {
    const neighbours = view.neighbours();
    const perState = new Map<string, number>();
    for (const n of neighbours) perState.set(n.state, (perState.get(n.state) ?? 0) + 1);
    family(
      'netstack_neighbours',
      'gauge',
      'ARP neighbour cache entries by state.',
      [...perState].sort(([a], [b]) => (a < b ? -1 : 1)).map(([state, k]) => `netstack_neighbours{state="${labelValue(state)}"} ${k}`),
    );
    family(
      'netstack_neighbour',
      'gauge',
      'ARP neighbour cache entries (1 each), with address and state.',
      neighbours.map(
        (n) => `netstack_neighbour{ip="${labelValue(n.ip)}",mac="${labelValue(n.mac)}",state="${labelValue(n.state)}"} 1`,
      ),
    );
  }
  return lines.join('\n') + '\n' + (view.extra?.metrics() ?? '');
}

function metrics(view: StackView, res: HttpResponse): void {
  res.setHeader('Content-Type', 'text/plain; version=0.0.4; charset=utf-8');
  res.end(renderMetrics(view, Date.now()));
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

// --- / (status page) ---

const COLUMNS: Array<keyof ConnectionInfo> = [
  'local', 'remote', 'state', 'sndUna', 'sndNxt', 'rcvNxt', 'sndWnd', 'rcvWnd', 'srtt', 'rto', 'retransmits', 'cwnd', 'ssthresh',
];

/** Connections listed on the status page (the rest are counted and linked). */
export const MAX_LISTED = 100;

/**
 * The status page. With `details` false (a request from outside the host side and the
 * --admin networks) the connections are only counted: no 4-tuples, no sequence numbers.
 */
export function renderStatusPage(view: StackView, now: number, details = true): string {
  // Counters that are still zero are left out here (they are all in /metrics).
  const stats = Object.entries(view.stats())
    .filter(([, v]) => v !== 0)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  // A busy server holds thousands of TIME-WAIT connections: the table lists live connections
  // only, at most MAX_LISTED, so the page stays small and cheap; TIME-WAIT is counted in the
  // summary, and /connections pages through every connection.
  const byState = statesOf(view);
  let total = 0;
  for (const n of byState.values()) total += n;
  const base = view.base ?? '';
  const listed = details ? view.connections(MAX_LISTED).filter((c) => c.state !== 'TIME-WAIT') : [];
  const connRows = listed.length
    ? listed.map(connectionRow)
    : [`<tr><td colspan="${COLUMNS.length}">${details ? 'no connections' : escapeHtml(DETAILS_WITHHELD)}</td></tr>`];
  if (details && total > listed.length) {
    connRows.push(
      `<tr><td colspan="${COLUMNS.length}">… and ${total - listed.length} more: <a href="${base}/connections">${base}/connections</a></td></tr>`,
    );
  }
  const summary = [...byState].map(([state, n]) => `${n} ${escapeHtml(state)}`).join(', ');
  const statRows = stats.length
    ? stats.map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${cellText(v)}</td></tr>`)
    : ['<tr><td colspan="2">all counters are zero</td></tr>'];
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>netstack ${escapeHtml(view.addr)}</title>`,
    '<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}' +
      'th,td{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#eee}' +
      'td:first-child,th:first-child{text-align:left}</style>',
    '</head>',
    '<body>',
    '<h1>netstack</h1>',
    `<p>Address <b>${escapeHtml(view.addr)}</b>, up ${formatUptime(now - view.startedAt)}, ${total} connection${total === 1 ? '' : 's'}${summary ? ` (${summary})` : ''}.</p>`,
    '<h2>Connections</h2>',
    '<table>',
    `<tr>${COLUMNS.map((k) => `<th>${k}</th>`).join('')}</tr>`,
    ...connRows,
    '</table>',
    // The ARP cache names the other hosts on the link: details too.
    ...(details ? neighbourTable(view) : []),
    view.extra?.html() ?? '',
    '<h2>Counters</h2>',
    `<p>Non-zero counters; <a href="${base}/metrics">${base}/metrics</a> has them all.</p>`,
    '<table>',
    '<tr><th>counter</th><th>value</th></tr>',
    ...statRows,
    '</table>',
    `<p>Also: <a href="${base}/connections">${base}/connections</a> (JSON), <a href="${base}/metrics">${base}/metrics</a> (Prometheus), ` +
      `<a href="${base}/bytes/1048576">${base}/bytes/N</a> (N bytes), POST ${base}/echo.</p>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** The ARP cache section of the status page (TAP mode), like `ip neigh show`. */
function neighbourTable(view: StackView): string[] {
  if (!view.neighbours) return [];
  const rows = view.neighbours().map(
    (n) =>
      `<tr><td>${cellText(n.ip)}</td><td>${cellText(n.mac || '(incomplete)')}</td><td>${cellText(n.state)}</td>` +
      `<td>${n.confirmedAgoMs < 0 ? '' : cellText(n.confirmedAgoMs / 1000)}</td><td>${n.queued}</td></tr>`,
  );
  return [
    '<h2>Neighbours (ARP)</h2>',
    '<table>',
    '<tr><th>address</th><th>MAC</th><th>state</th><th>confirmed (s ago)</th><th>queued</th></tr>',
    ...(rows.length ? rows : ['<tr><td colspan="5">no neighbours</td></tr>']),
    '</table>',
  ];
}

function statusPage(view: StackView, res: HttpResponse, details: boolean): void {
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(renderStatusPage(view, Date.now(), details));
}

export function formatUptime(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return [d ? `${d}d` : '', d || h ? `${h}h` : '', d || h || m ? `${m}m` : '', `${s}s`].filter(Boolean).join(' ');
}

export function escapeHtml(s: string): string {
  // Most text (addresses, states, counter names) has nothing to escape: skip the replace.
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(ESCAPABLE, (c) => `&#${c.charCodeAt(0)};`);
}
const NEEDS_ESCAPE = /[&<>"']/;
const ESCAPABLE = /[&<>"']/g;

/** A table cell's text: numbers need no escaping (fractions to 0.1, e.g. srtt in ms). */
function cellText(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(1);
  return escapeHtml(String(v ?? ''));
}

/** One row of the connections table (the page's hot loop under load: plain concatenation). */
function connectionRow(c: ConnectionInfo): string {
  let row = '<tr>';
  for (const k of COLUMNS) row += '<td>' + cellText(c[k]) + '</td>';
  return row + '</tr>';
}

// --- helpers ---

function json(res: HttpResponse, value: unknown): void {
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify(value, null, 2) + '\n');
}

function text(res: HttpResponse, status: number, body: string): void {
  res.status = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(body);
}

function methodNotAllowed(res: HttpResponse, methods: string[]): void {
  // RFC 9110 §15.5.6: a 405 lists the allowed methods in Allow.
  res.setHeader('Allow', methods.join(', '));
  text(res, 405, `method not allowed; use ${methods.join(' or ')}\n`);
}
