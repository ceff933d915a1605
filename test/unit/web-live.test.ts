/**
 * The live view's routes without a network: who sees what (details only for the host side),
 * the table's sorting and paging over 10,000 connections, the event stream's first frames.
 */
import { describe, expect, it } from 'vitest';
import type { ConnectionInfo, StackView } from '../../src/http/routes.js';
import type { HttpRequest, HttpResponse } from '../../src/http/server.js';
import type { ConnRow } from '../../src/web/live.js';
import { createLiveView, formatTraceEvent, parseTableQuery, tablePage } from '../../src/web/live.js';
import { Watcher } from '../../src/web/watch.js';

const HOST = '10.0.0.1';

function request(path: string, remoteAddress: string, query = ''): HttpRequest {
  return { method: 'GET', target: path + (query ? `?${query}` : ''), path, query, version: 'HTTP/1.1', headers: new Map(), contentLength: null, body: (async function* () {})(), remoteAddress, remotePort: 40000 } as unknown as HttpRequest;
}

function response() {
  const headers = new Map<string, string>();
  const chunks: string[] = [];
  let ended = false;
  let failWrites = false;
  const res: HttpResponse & { body(): string; headers: Map<string, string>; ended(): boolean; hangUp(): void } = {
    status: 200,
    headersSent: false,
    headers,
    setHeader: (k: string, v: string | number) => void headers.set(k.toLowerCase(), String(v)),
    write: (c: Uint8Array | string) => {
      if (failWrites) return Promise.reject(new Error('gone'));
      chunks.push(String(c));
      return Promise.resolve();
    },
    end: (c?: Uint8Array | string) => {
      if (c !== undefined) chunks.push(typeof c === 'string' ? c : Buffer.from(c).toString());
      ended = true;
    },
    body: () => chunks.join(''),
    ended: () => ended,
    hangUp: () => (failWrites = true),
  } as never;
  return res;
}

function conn(i: number, state = 'ESTABLISHED'): ConnectionInfo {
  return { local: '10.0.0.2:80', remote: `10.0.0.1:${10_000 + i}`, state, sndUna: i, sndNxt: i, rcvNxt: 7, sndWnd: 1, rcvWnd: 1, srtt: 1, rto: 200, retransmits: 0 };
}

function setup(connections: ConnectionInfo[] = [conn(1)]) {
  let transition: ((e: never) => void) | undefined;
  const stack = { addr: 0x0a000002, clock: { now: () => 0 }, packetTap: undefined, onTransition: (fn: (e: never) => void) => ((transition = fn), () => undefined) };
  const watcher = new Watcher(stack as never);
  const view: StackView = { addr: '10.0.0.2', startedAt: 0, stats: () => ({ 'ip.in': 3 }), connections: () => connections, connectionStates: () => ({ ESTABLISHED: connections.length }) };
  const live = createLiveView({ watcher, view, hostAddr: HOST, canSeeDetails: (r) => r === HOST, now: () => 0, tickMs: 10_000, tableMs: 10_000 });
  return { live, watcher, stack, fire: (e: object) => transition?.(e as never) };
}

describe('the live page', () => {
  it('shows the host side the diagram, the connections and their 4-tuples', async () => {
    const { live } = setup();
    const res = response();
    await live.handle(request('/', HOST), res);
    const html = res.body();
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(html).toContain('<h1>netstack</h1>');
    expect(html).toContain('data-arrow="LISTEN>SYN-RECEIVED"');
    expect(html).toContain('<td>10.0.0.1:10001</td>');
    expect(html).toContain('<script src="/live/app.js" defer></script>');
    live.close();
  });

  it('shows anyone else the counts only: no 4-tuple, no sequence number, no story, no trace', async () => {
    const { live } = setup();
    const res = response();
    await live.handle(request('/', '10.0.0.9'), res);
    expect(res.body()).toContain('data-state="ESTABLISHED"');
    expect(res.body()).not.toContain('10.0.0.1:10001');
    expect(res.body()).toContain('shown to the host side of the link (10.0.0.1)');
    for (const path of ['/live/trace', '/live/story/1', '/live/story/1.txt']) {
      const r = response();
      await live.handle(request(path, '10.0.0.9'), r);
      expect(r.status, path).toBe(403);
    }
    live.close();
  });

  it('serves its script and style itself, and leaves other paths to the app below', async () => {
    const { live } = setup();
    const js = response();
    await live.handle(request('/live/app.js', '10.0.0.9'), js);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.body()).toContain("new EventSource(");
    expect(live.handle(request('/metrics', HOST), response())).toBe(false);
    const missing = response();
    await live.handle(request('/live/story/99.txt', HOST), missing);
    expect(missing.status).toBe(404);
    live.close();
  });

  it("streams events: hello, the diagram's counts, the table page; a hang-up ends the stream", async () => {
    const { live } = setup();
    const res = response();
    const done = live.handle(request('/live/events', HOST, 'size=10'), res) as Promise<void>;
    await new Promise((r) => setTimeout(r, 0));
    const body = res.body();
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(body.startsWith('retry: 1000\nevent: hello\ndata: {"addr":"10.0.0.2","details":true}\n\n')).toBe(true);
    const events = body.split('\n').filter((l) => l.startsWith('event: '));
    expect(events).toEqual(['event: hello', 'event: tick', 'event: conns']);
    const conns = JSON.parse(body.split('event: conns\ndata: ')[1]!.split('\n')[0]!);
    expect(conns.total).toBe(1);
    expect(conns.rows[0].remote).toBe('10.0.0.1:10001');
    expect(live.viewers).toBe(1);
    res.hangUp();
    live.close();
    await done;
    expect(live.viewers).toBe(0);
  });
});

describe('with 10,000 connections', () => {
  it('the page and each table frame of the stream stay one page long', async () => {
    const many = Array.from({ length: 10_000 }, (_, i) => conn(i));
    const { live } = setup(many);
    const page = response();
    await live.handle(request('/', HOST), page);
    expect(page.body().match(/<tr data-id|<tr>/g)!.length).toBeLessThan(60);
    expect(page.body().length).toBeLessThan(40_000);
    const res = response();
    const done = live.handle(request('/live/events', HOST), res) as Promise<void>;
    await new Promise((r) => setTimeout(r, 0));
    const frame = res.body().split('event: conns\ndata: ')[1]!.split('\n')[0]!;
    const conns = JSON.parse(frame);
    expect(conns.total).toBe(10_000);
    expect(conns.rows).toHaveLength(50);
    expect(frame.length).toBeLessThan(20_000);
    res.hangUp();
    live.close();
    await done;
  });
});

describe('the connections table', () => {
  const rows = (): ConnRow[] =>
    Array.from({ length: 10_000 }, (_, i) => ({ ...conn(i, i % 3 === 0 ? 'TIME-WAIT' : 'ESTABLISHED'), id: i % 2 ? i : undefined, closed: i % 3 === 0 }));

  it('pages 10,000 connections 50 at a time, sorted by the column asked for', () => {
    const page = tablePage(rows(), parseTableQuery(new URLSearchParams('sort=sndUna&dir=desc&offset=100')));
    expect(page.total).toBe(10_000);
    expect(page.rows).toHaveLength(50);
    expect(page.rows.map((r) => r.sndUna)).toEqual(Array.from({ length: 50 }, (_, i) => 9_899 - i));
  });

  it('sorts rows without the value last in either direction, and clamps the offset to the last page', () => {
    const asc = tablePage(rows(), { sort: 'id', desc: false, offset: 9_990, size: 50 });
    expect(asc.offset).toBe(9_950);
    expect(asc.rows.every((r) => r.id === undefined)).toBe(true);
    const desc = tablePage(rows(), { sort: 'id', desc: true, offset: 0, size: 3 });
    expect(desc.rows.map((r) => r.id)).toEqual([9_999, 9_997, 9_995]);
  });

  it('reads the query forgivingly: unknown columns, negative offsets and huge pages fall back', () => {
    expect(parseTableQuery(new URLSearchParams('sort=__proto__&offset=-5&size=1000000'))).toEqual({ sort: 'id', desc: true, offset: 0, size: 50 });
    expect(parseTableQuery(new URLSearchParams('sort=state'))).toEqual({ sort: 'state', desc: false, offset: 0, size: 50 });
  });
});

describe('trace lines', () => {
  it('print a transition like the test trace, a segment like packetdrill, with the time in front', () => {
    expect(formatTraceEvent({ type: 'transition', t: 1500, conn: '10.0.0.1:4000 > 10.0.0.2:80', from: 'LISTEN', to: 'SYN-RECEIVED', cause: 'SYN received' })).toBe(
      '      1.500000  10.0.0.1:4000 > 10.0.0.2:80  LISTEN -> SYN-RECEIVED  (SYN received)',
    );
    expect(formatTraceEvent({ type: 'segment', t: 2, conn: 'c', dir: 'in', segment: 'S 0:0(0) win 1' })).toBe('      0.002000  c  < S 0:0(0) win 1');
  });
});
