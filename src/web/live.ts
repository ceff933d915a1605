/**
 * The live view's routes, mounted over the app of `netstack up`:
 *
 *   GET /                    the live page (plain HTML that works without JavaScript)
 *   GET /live/events         Server-Sent Events: diagram counts (coalesced per tick), a page of
 *                            the connections table, the selected connection's story
 *                            (?sort=COLUMN&dir=asc|desc&offset=N&size=N&story=ID)
 *   GET /live/story/ID       one story as JSON (ladder rows, graph series); .txt: the text ladder
 *   GET /live/trace[?v=1]    transitions (and with v=1 segments) as text lines, for `netstack trace`
 *   GET /live/app.js, .css   the page's assets (served from src/web/assets, no external network)
 *
 * Exact sequence numbers and other clients' 4-tuples go only to viewers for whom
 * `canSeeDetails(remote address)` holds; everyone else gets the counts.
 */
import { readFileSync } from 'node:fs';
import type { HttpRequest, HttpResponse } from '../http/server.js';
import type { StackView } from '../http/routes.js';
import { formatUptime } from '../http/routes.js';
import type { PageModel } from './page.js';
import { kib, otherTransitions, renderPage } from './page.js';
import { CoalescingStream, LineStream, sseComment, sseFrame } from './sse.js';
import { formatLadder, graphSeries, ladderRows } from './story.js';
import type { Story } from './story.js';
import type { TraceEvent, Watcher } from './watch.js';

/** One row of the connections table: TCP's numbers, or a closed connection's last state. */
export interface ConnRow {
  /** The story's id (click to open), when the watcher has one. */
  id: number | undefined;
  state: string;
  local: string;
  remote: string;
  sndUna?: number | undefined;
  sndNxt?: number | undefined;
  rcvNxt?: number | undefined;
  sndWnd?: number | undefined;
  rcvWnd?: number | undefined;
  srtt?: number | undefined;
  rto?: number | undefined;
  cwnd?: number | undefined;
  ssthresh?: number | undefined;
  retransmits?: number | undefined;
  /** TIME-WAIT or closed: shown grey. */
  closed: boolean;
}

const SORTABLE = new Set(['id', 'state', 'local', 'remote', 'sndUna', 'sndNxt', 'rcvNxt', 'sndWnd', 'rcvWnd', 'srtt', 'rto', 'cwnd', 'ssthresh', 'retransmits']);

export interface TableQuery {
  sort: keyof ConnRow;
  desc: boolean;
  offset: number;
  size: number;
}

export const MAX_PAGE_SIZE = 200;

export function parseTableQuery(q: URLSearchParams): TableQuery {
  const sort = q.get('sort') ?? 'id';
  const offset = Number(q.get('offset') ?? 0);
  const size = Number(q.get('size') ?? 50);
  return {
    sort: (SORTABLE.has(sort) ? sort : 'id') as keyof ConnRow,
    desc: (q.get('dir') ?? (sort === 'id' || !SORTABLE.has(sort) ? 'desc' : 'asc')) === 'desc',
    offset: Number.isInteger(offset) && offset >= 0 ? offset : 0,
    size: Number.isInteger(size) && size >= 1 && size <= MAX_PAGE_SIZE ? size : 50,
  };
}

/** Sort (missing values last, whatever the direction) and cut one page. */
export function tablePage(rows: ConnRow[], q: TableQuery): { rows: ConnRow[]; total: number; offset: number; size: number } {
  const k = q.sort;
  const sign = q.desc ? -1 : 1;
  rows.sort((a, b) => {
    const x = a[k];
    const y = b[k];
    if (x === undefined) return y === undefined ? 0 : 1;
    if (y === undefined) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * sign;
  });
  const offset = Math.min(q.offset, Math.max(0, rows.length - 1 - ((rows.length - 1) % q.size)));
  return { rows: rows.slice(offset, offset + q.size), total: rows.length, offset, size: q.size };
}

export interface LiveViewOptions {
  watcher: Watcher;
  view: StackView;
  /** Who may see 4-tuples and sequence numbers (the host side of the link by default). */
  canSeeDetails: (remoteAddress: string) => boolean;
  /** The host side's address, named on the page for those who cannot see details. */
  hostAddr: string;
  /** The stack's clock (ms), for pruning closed stories. */
  now: () => number;
  /** Diagram counts go out at most this often (ms). */
  tickMs?: number;
  /** The table page and the open story go out at most this often (ms). */
  tableMs?: number;
  heartbeatMs?: number;
}

interface Viewer {
  details: boolean;
  table: TableQuery;
  storyId: number | undefined;
  stream: CoalescingStream;
  lastTick: string;
  lastTable: string;
  storyVersion: number;
  storyClosed: boolean;
}

/** The assets, read once from src/web/assets (this file runs from src/web or dist/web). */
const ASSETS_DIR = new URL('../../src/web/assets/', import.meta.url);
const ASSETS: Record<string, { type: string; file: string }> = {
  '/live/app.js': { type: 'text/javascript; charset=utf-8', file: 'live.js' },
  '/live/app.css': { type: 'text/css; charset=utf-8', file: 'live.css' },
};

export interface LiveView {
  /** Answer a request this view owns; false for the others. */
  handle(req: HttpRequest, res: HttpResponse): Promise<void> | void | false;
  close(): void;
  readonly viewers: number;
  stats(): Record<string, number>;
}

export function createLiveView(opts: LiveViewOptions): LiveView {
  const { watcher, view } = opts;
  const tickMs = opts.tickMs ?? 250;
  const tableMs = opts.tableMs ?? 1000;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const viewers = new Set<Viewer>();
  const assetCache = new Map<string, Buffer>();
  let ticks = 0;
  let sentFrames = 0;
  let closed = false;

  const details = (req: HttpRequest) => req.remoteAddress !== undefined && opts.canSeeDetails(req.remoteAddress);

  const tickPayload = (fired: Map<string, number>) => {
    const st = states();
    const bytes = watcher.bytes();
    return {
      arrows: Object.fromEntries(watcher.arrows),
      fired: Object.fromEntries(fired),
      others: otherTransitions(watcher.arrows),
      states: st,
      total: total(st),
      watch: { stories: watcher.storyCount, bytes, memory: kib(bytes) },
    };
  };
  const states = () => (view.connectionStates ? view.connectionStates() : {});
  const total = (st: Record<string, number>) => Object.values(st).reduce((a, b) => a + b, 0);

  // Every row has the same shape (one object literal), so sorting 10,000 of them stays fast.
  const allRows = (): ConnRow[] => {
    const rows: ConnRow[] = [];
    for (const c of view.connections()) {
      rows.push({
        id: watcher.storyByName(c.remote, c.local)?.id,
        state: c.state,
        local: c.local,
        remote: c.remote,
        sndUna: c.sndUna,
        sndNxt: c.sndNxt,
        rcvNxt: c.rcvNxt,
        sndWnd: c.sndWnd,
        rcvWnd: c.rcvWnd,
        srtt: c.srtt,
        rto: c.rto,
        cwnd: c.cwnd,
        ssthresh: c.ssthresh,
        retransmits: c.retransmits,
        closed: c.state === 'TIME-WAIT',
      });
    }
    for (const s of watcher.closedStories()) {
      rows.push({
        id: s.id,
        state: 'CLOSED',
        local: s.local,
        remote: s.remote,
        sndUna: undefined,
        sndNxt: undefined,
        rcvNxt: undefined,
        sndWnd: undefined,
        rcvWnd: undefined,
        srtt: undefined,
        rto: undefined,
        cwnd: undefined,
        ssthresh: undefined,
        retransmits: undefined,
        closed: true,
      });
    }
    return rows;
  };

  const storyPayload = (s: Story) => {
    const rows = ladderRows(s);
    return {
      id: s.id,
      local: s.local,
      remote: s.remote,
      state: s.state,
      closed: s.closedAt !== undefined,
      localIsn: s.localIsn,
      remoteIsn: s.remoteIsn,
      dropped: s.segments.dropped,
      rows,
      text: formatLadder(s, rows),
      graphs: graphSeries(s),
    };
  };

  const send = (v: Viewer, kind: string, data: unknown) => {
    sentFrames++;
    v.stream.send(kind, sseFrame(kind, data));
  };

  const pushTable = (v: Viewer) => {
    if (!v.details) return;
    const page = tablePage(allRows(), v.table);
    const json = JSON.stringify(page);
    if (json === v.lastTable) return;
    v.lastTable = json;
    send(v, 'conns', { ...page, sort: v.table.sort, dir: v.table.desc ? 'desc' : 'asc' });
  };

  const pushStory = (v: Viewer) => {
    if (!v.details || v.storyId === undefined) return;
    const s = watcher.story(v.storyId);
    if (!s) {
      if (!v.storyClosed) send(v, 'story', { id: v.storyId, gone: true });
      v.storyClosed = true;
      return;
    }
    if (s.version === v.storyVersion) return;
    v.storyVersion = s.version;
    send(v, 'story', storyPayload(s));
  };

  // One timer while anybody watches: counts each tick; table and story every tableMs.
  let tickTimer: ReturnType<typeof setInterval> | undefined;
  let lastTable = 0;
  const tick = () => {
    ticks++;
    const fired = watcher.drainFired();
    const payload = tickPayload(fired);
    const withoutFired = JSON.stringify({ ...payload, fired: undefined });
    const t = Date.now();
    const tableDue = t - lastTable >= tableMs;
    if (tableDue) lastTable = t;
    for (const v of viewers) {
      if (fired.size > 0 || withoutFired !== v.lastTick) {
        v.lastTick = withoutFired;
        send(v, 'tick', payload);
      }
      if (tableDue) {
        pushTable(v);
        pushStory(v);
      }
    }
  };
  const heartbeat = setInterval(() => {
    for (const v of viewers) v.stream.send('heartbeat', sseComment('heartbeat'));
  }, heartbeatMs);
  heartbeat.unref?.();
  // Closed stories expire even when nobody watches.
  const pruneTimer = setInterval(() => watcher.prune(opts.now()), 1000);
  pruneTimer.unref?.();

  const startTicking = () => {
    if (tickTimer === undefined && !closed) {
      tickTimer = setInterval(tick, tickMs);
      tickTimer.unref?.();
    }
  };
  const stopTickingIfIdle = () => {
    if (viewers.size === 0 && tickTimer !== undefined) {
      clearInterval(tickTimer);
      tickTimer = undefined;
      watcher.drainFired();
    }
  };

  async function events(req: HttpRequest, res: HttpResponse): Promise<void> {
    const q = new URLSearchParams(req.query);
    const storyParam = Number(q.get('story'));
    const v: Viewer = {
      details: details(req),
      table: parseTableQuery(q),
      storyId: Number.isInteger(storyParam) && storyParam > 0 ? storyParam : undefined,
      stream: new CoalescingStream((chunk) => res.write(chunk)),
      lastTick: '',
      lastTable: '',
      storyVersion: -1,
      storyClosed: false,
    };
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    viewers.add(v);
    startTicking();
    // Reconnect after 1 s if the stream breaks (the stack restarting, say).
    v.stream.send('hello', `retry: 1000\n` + sseFrame('hello', { addr: view.addr, details: v.details }));
    const payload = tickPayload(new Map());
    v.lastTick = JSON.stringify({ ...payload, fired: undefined });
    send(v, 'tick', payload);
    pushTable(v);
    pushStory(v);
    try {
      await v.stream.closed;
    } finally {
      viewers.delete(v);
      stopTickingIfIdle();
    }
  }

  async function trace(req: HttpRequest, res: HttpResponse): Promise<void> {
    const verbose = new URLSearchParams(req.query).get('v') === '1';
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    const lines = new LineStream((chunk) => res.write(chunk));
    lines.line(`# netstack ${view.addr}: transitions${verbose ? ' and segments' : ''} as they happen`);
    const off = watcher.onTrace((e) => lines.line(formatTraceEvent(e)), verbose);
    const unquiet = watcher.quietTrace(`${req.remoteAddress}:${req.remotePort}`);
    const heartbeatTimer = setInterval(() => lines.line('# still here'), heartbeatMs);
    try {
      await lines.closed;
    } finally {
      off();
      unquiet();
      clearInterval(heartbeatTimer);
    }
  }

  function story(req: HttpRequest, res: HttpResponse): void {
    const m = /^\/live\/story\/(\d{1,9})(\.txt)?$/.exec(req.path);
    const s = m ? watcher.story(Number(m[1])) : undefined;
    if (!s) return text(res, 404, 'no such connection story (closed ones are kept for a while, then forgotten)\n');
    res.setHeader('Cache-Control', 'no-store');
    if (m![2]) return text(res, 200, `${s.remote} ⇄ ${s.local}, now ${s.state}\n${formatLadder(s)}`);
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(storyPayload(s)));
  }

  function page(req: HttpRequest, res: HttpResponse): void {
    const d = details(req);
    const q = new URLSearchParams(req.query);
    const storyId = Number(q.get('story'));
    const s = d && Number.isInteger(storyId) ? watcher.story(storyId) : undefined;
    const stats = Object.entries({ ...view.stats(), ...watcher.stats() })
      .filter(([, n]) => n !== 0)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    const model: PageModel = {
      addr: view.addr,
      uptime: formatUptime(Date.now() - view.startedAt),
      details: d,
      hostAddr: opts.hostAddr,
      arrows: watcher.arrows,
      states: states(),
      total: total(states()),
      table: d ? tablePage(allRows(), parseTableQuery(q)) : { rows: [], total: 0, offset: 0, size: 0 },
      stats,
      story: s ? { id: s.id, title: `${s.remote} ⇄ ${s.local} (${s.state})`, text: formatLadder(s) } : undefined,
      watch: { stories: watcher.storyCount, bytes: watcher.bytes() },
    };
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.end(renderPage(model));
  }

  function asset(req: HttpRequest, res: HttpResponse): void {
    const a = ASSETS[req.path]!;
    let body = assetCache.get(a.file);
    if (!body) {
      body = readFileSync(new URL(a.file, ASSETS_DIR));
      assetCache.set(a.file, body);
    }
    res.setHeader('Content-Type', a.type);
    res.setHeader('Content-Length', body.length);
    res.end(body);
  }

  return {
    handle(req, res) {
      const p = req.path;
      if (p !== '/' && !p.startsWith('/live/')) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        return text(res, 405, 'method not allowed; use GET or HEAD\n');
      }
      if (p === '/') return page(req, res);
      if (ASSETS[p]) return asset(req, res);
      if (p === '/live/events') return events(req, res);
      if (!details(req)) {
        return text(res, 403, `connection details are shown to the host side of the link (${opts.hostAddr}) and --admin addresses only\n`);
      }
      if (p === '/live/trace') return trace(req, res);
      if (p.startsWith('/live/story/')) return story(req, res);
      return text(res, 404, `not found: ${p}\n`);
    },
    close() {
      closed = true;
      if (tickTimer !== undefined) clearInterval(tickTimer);
      clearInterval(heartbeat);
      clearInterval(pruneTimer);
      for (const v of viewers) v.stream.close();
      watcher.detach();
    },
    get viewers() {
      return viewers.size;
    },
    stats: () => ({ 'web.viewers': viewers.size, 'web.ticks': ticks, 'web.frames': sentFrames }),
  };
}

/** One line per event, like the test trace (NETSTACK_TRACE=1) with the time in front. */
export function formatTraceEvent(e: TraceEvent): string {
  const t = (e.t / 1000).toFixed(6).padStart(14);
  if (e.type === 'transition') return `${t}  ${e.conn}  ${e.from} -> ${e.to}  (${e.cause})`;
  return `${t}  ${e.conn}  ${e.dir === 'in' ? '<' : '>'} ${e.segment}`;
}

function text(res: HttpResponse, status: number, body: string): void {
  res.status = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(body);
}
