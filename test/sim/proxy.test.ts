/**
 * The reverse proxy end to end on two simulated stacks (virtual clock, seeded): A runs the
 * proxy on port 80; B runs the upstream servers (src/http's server with small handlers, or raw
 * sockets for misbehaving ones) and the client. Every upstream connection is an active open
 * from A's own TCP.
 */
import { describe, expect, it } from 'vitest';
import { createNetstackApp } from '../../src/http/routes.js';
import { ResponseParser } from '../../src/http/response-parser.js';
import type { ResponseHead } from '../../src/http/response-parser.js';
import type { Handler, HttpRequest } from '../../src/http/server.js';
import { HttpServer } from '../../src/http/server.js';
import { createProxyApp } from '../../src/proxy/app.js';
import type { ProxyApp } from '../../src/proxy/app.js';
import { parseProxyConfig } from '../../src/proxy/config.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { A_ADDR, B_ADDR, createSim, randomBytes } from '../helpers/sim.js';
import type { Sim } from '../helpers/sim.js';

interface Seen {
  port: number;
  method: string;
  target: string;
  fields: string[];
  body: number;
}

interface World {
  sim: Sim;
  app: ProxyApp;
  seen: Seen[];
  /** Start an upstream HTTP server on B. */
  upstream(port: number, handler?: Handler): { close(): void };
  /** A raw upstream on B: `onData` gets each accepted socket's first bytes. */
  raw(port: number, onData: (socket: TcpSocket, data: Buffer) => void): void;
}

/** By default an upstream answers with its port, and records what it got. */
function world(configText: string, seed = 1): World {
  const sim = createSim({ seed });
  const seen: Seen[] = [];
  const config = parseProxyConfig(configText.replaceAll('UP', B_ADDR), 'test.conf');
  const builtins = createNetstackApp({ addr: A_ADDR, startedAt: 0, stats: () => ({}), connections: () => [], base: '/_netstack' });
  const app = createProxyApp({ config, clock: sim.clock, builtins, connect: (host, port) => sim.a.connect({ host, port, noDelay: true }) });
  const http = new HttpServer({ handler: app.handler, clock: sim.clock });
  sim.a.createServer({ allowHalfOpen: true }, (s) => http.handleConnection(s)).listen(80);
  const upstream = (port: number, handler?: Handler) => {
    const record = async (req: HttpRequest, readBody: boolean) => {
      let body = -1;
      if (readBody) {
        body = 0;
        for await (const c of req.body) body += c.length;
      }
      seen.push({ port, method: req.method, target: req.target, fields: req.fields.map(([n, v]) => `${n}: ${v}`), body });
    };
    const h: Handler =
      handler ??
      (async (req, res) => {
        await record(req, true);
        res.setHeader('Content-Type', 'text/plain');
        res.end(`${port}`);
      });
    const wrapped: Handler = async (req, res) => {
      if (handler) await record(req, false);
      return h(req, res);
    };
    const server = new HttpServer({ handler: wrapped, clock: sim.clock, idleTimeoutMs: 60_000 });
    const l = sim.b.createServer({ allowHalfOpen: true }, (s) => server.handleConnection(s)).listen(port);
    return { close: () => (server.close(), l.close()) };
  };
  const raw = (port: number, onData: (socket: TcpSocket, data: Buffer) => void) => {
    sim.b
      .createServer((s) => {
        s.on('error', () => {});
        s.once('data', (d: Buffer) => onData(s, d));
      })
      .listen(port);
  };
  return { sim, app, seen, upstream, raw };
}

interface Reply {
  head?: ResponseHead;
  body: Buffer;
  error?: string;
  closed: boolean;
}

/** One request on a new connection from B to the proxy; resolves when the response is complete or the connection ends. */
async function request(w: World, raw: string | Buffer, opts: { limitMs?: number } = {}): Promise<Reply> {
  const socket = w.sim.b.connect({ host: A_ADDR, port: 80 });
  const bytes = typeof raw === 'string' ? Buffer.from(raw.replaceAll('\n', '\r\n'), 'latin1') : raw;
  const parser = new ResponseParser(bytes.toString('latin1', 0, 8).split(' ')[0]!);
  const reply: Reply = { body: Buffer.alloc(0), closed: false };
  const parts: Buffer[] = [];
  let done = false;
  const pump = () => {
    for (let ev = parser.next(); ev; ev = parser.next()) {
      if (ev.type === 'head') reply.head = ev.head;
      else if (ev.type === 'body') parts.push(Buffer.from(ev.data));
      else if (ev.type === 'end') done = true;
      else if (ev.type === 'error') {
        reply.error = ev.reason;
        done = true;
      }
    }
  };
  socket.on('data', (d: Buffer) => {
    parser.feed(d);
    pump();
  });
  socket.on('end', () => {
    parser.end();
    pump();
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    reply.closed = true;
    done = true;
  });
  socket.write(bytes);
  await w.sim.clock.run(() => !done, opts.limitMs ?? 120_000);
  socket.end();
  reply.body = Buffer.concat(parts);
  return reply;
}

const get = (w: World, path: string, extra = '') => request(w, `GET ${path} HTTP/1.1\nHost: proxy.test\n${extra}\n`);

const THREE = `upstream app { server UP:8001 weight=3; server UP:8002; server UP:8003; }
server { location / { proxy_pass http://app; } }`;

describe('proxying (simulated stacks)', () => {
  it('weights 3:1:1 split 50 requests exactly 30/10/10, in nginx order', async () => {
    const w = world(THREE);
    for (const p of [8001, 8002, 8003]) w.upstream(p);
    const order: string[] = [];
    for (let i = 0; i < 50; i++) {
      const r = await get(w, `/n/${i}`);
      expect(r.head?.status).toBe(200);
      order.push(r.body.toString());
    }
    expect(order.slice(0, 5).join(' ')).toBe('8001 8002 8001 8003 8001');
    const count = (p: string) => order.filter((x) => x === p).length;
    expect([count('8001'), count('8002'), count('8003')]).toEqual([30, 10, 10]);
  });

  it('forwards fields as nginx: Host = $proxy_host, X-Real-IP, X-Forwarded-For appended, Via; hop-by-hop removed both ways', async () => {
    const w = world(THREE);
    w.upstream(8001, (req, res) => res.end('ok'));
    w.raw(8002, (s) =>
      s.end(
        'HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: hop\r\nKeep-Alive: timeout=5\r\nSet-Cookie: a=1\r\n' +
          'Set-Cookie: b=2\r\nX-End: to-end\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nok',
      ),
    );
    const r = await get(w, '/path?q=1', 'Connection: keep-alive, X-Hop\nX-Hop: 1\nTE: trailers\nUpgrade: h2c\nProxy-Connection: x\nX-Forwarded-For: 192.0.2.9\nX-Keep: yes\nVia: 1.0 corp\n');
    expect(r.head?.status).toBe(200);
    const s = w.seen[0]!;
    expect(s.target).toBe('/path?q=1');
    expect(s.fields).toContain('host: app');
    expect(s.fields).toContain(`x-real-ip: ${B_ADDR}`);
    expect(s.fields).toContain(`x-forwarded-for: 192.0.2.9, ${B_ADDR}`);
    expect(s.fields).toContain('via: 1.0 corp, 1.1 netstack');
    expect(s.fields).toContain('x-keep: yes');
    for (const gone of ['x-hop', 'te', 'upgrade', 'proxy-connection', 'keep-alive']) expect(s.fields.some((f) => f.startsWith(`${gone}:`))).toBe(false);
    const r2 = await get(w, '/');
    expect(r2.body.toString()).toBe('ok');
    const rf = r2.head!.fields.map(([n, v]) => `${n}: ${v}`);
    expect(rf).toContain('set-cookie: a=1');
    expect(rf).toContain('set-cookie: b=2');
    expect(rf).toContain('x-end: to-end');
    expect(rf).toContain('via: 1.1 netstack');
    expect(rf.some((f) => f.startsWith('x-secret') || f.startsWith('keep-alive'))).toBe(false);
    expect(rf.find((f) => f.startsWith('date:'))).not.toContain('1970'); // our Date, as nginx
  });

  it('longest prefix wins; proxy_pass with a URI replaces the prefix; no match is 404; built-ins live under /_netstack/', async () => {
    const w = world(`upstream a { server UP:8001; } upstream b { server UP:8002; }
      server { location /api/ { proxy_pass http://a; } location /api/v2/ { proxy_pass http://b/new/; } location = /exact { proxy_pass http://b; } }`);
    w.upstream(8001);
    w.upstream(8002);
    expect((await get(w, '/api/x')).body.toString()).toBe('8001');
    expect((await get(w, '/api/v2/thing?z=1')).body.toString()).toBe('8002');
    expect(w.seen[1]!.target).toBe('/new/thing?z=1');
    expect((await get(w, '/exact')).body.toString()).toBe('8002');
    expect((await get(w, '/exactly')).head?.status).toBe(404);
    expect((await get(w, '/elsewhere')).head?.status).toBe(404);
    const metrics = await get(w, '/_netstack/metrics');
    expect(metrics.head?.status).toBe(200);
    expect((await get(w, '/_netstack/bytes/10')).body.length).toBe(10);
  });

  it('a server that refuses connections is skipped without failing a GET, left out for fail_timeout, then tried again', async () => {
    const w = world(THREE);
    w.upstream(8001);
    w.upstream(8003); // 8002 is not listening: RST to our SYN
    const got: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await get(w, '/');
      expect(r.head?.status).toBe(200);
      got.push(r.body.toString());
    }
    expect(got).not.toContain('8002');
    const peers = w.app.describe();
    expect(peers.find((p) => p.server.endsWith(':8002'))).toMatchObject({ state: 'failed', failures: 1 });
    // After fail_timeout (10 s) it is tried again; now it answers.
    w.upstream(8002);
    await w.sim.clock.sleep(10_500);
    const later: string[] = [];
    for (let i = 0; i < 10; i++) later.push((await get(w, '/')).body.toString());
    expect(later).toContain('8002');
  });

  it('all servers down: 502 at once; back to 200 once they return and fail_timeout has passed', async () => {
    const w = world(`upstream app { server UP:8001 fail_timeout=3s; server UP:8002 fail_timeout=3s; }
      server { location / { proxy_pass http://app; } }`);
    const first = await get(w, '/');
    expect(first.head?.status).toBe(502);
    expect(first.body.toString()).toContain('upstream error');
    const second = await get(w, '/');

    expect(second.head?.status).toBe(502);
    expect(second.body.toString()).toContain('no live upstreams');
    w.upstream(8001);
    w.upstream(8002);
    await w.sim.clock.sleep(3500);
    expect((await get(w, '/')).head?.status).toBe(200);
  });

  it('a backup server answers only while every primary is down', async () => {
    const w = world(`upstream app { server UP:8001; server UP:8009 backup; } server { location / { proxy_pass http://app; } }`);
    w.upstream(8001);
    w.upstream(8009);
    expect((await get(w, '/')).body.toString()).toBe('8001');
    expect((await get(w, '/')).body.toString()).toBe('8001');
    const w2 = world(`upstream app { server UP:8001; server UP:8002; server UP:8009 backup; } server { location / { proxy_pass http://app; } }`);
    w2.upstream(8009);
    expect((await get(w2, '/')).body.toString()).toBe('8009');
  });

  it('a POST whose request went out is never sent again; a GET in the same spot goes to the next server', async () => {
    const w = world(THREE);
    let received = 0;
    // Every upstream reads the request, then resets the connection without answering.
    for (const p of [8001, 8002, 8003]) {
      w.raw(p, (s) => {
        received++;
        s.destroy();
      });
    }
    const post = await request(w, 'POST /order HTTP/1.1\nHost: x\nContent-Length: 5\n\nhello');
    expect(post.head?.status).toBe(502);
    expect(received).toBe(1);
    received = 0;
    await w.sim.clock.sleep(11_000); // let every server back in
    const g = await get(w, '/');
    expect(g.head?.status).toBe(502);
    expect(received).toBe(3); // tried on each server once
  });

  it('a POST that could not connect anywhere is sent to the next server (nothing was sent)', async () => {
    const w = world(`upstream app { server UP:8001; server UP:8002; } server { location / { proxy_pass http://app; } }`);
    w.upstream(8002); // 8001 refuses
    const r = await request(w, 'POST /x HTTP/1.1\nHost: x\nContent-Length: 3\n\nabc');
    expect(r.head?.status).toBe(200);
    expect(w.seen.filter((s) => s.method === 'POST')).toHaveLength(1);
    expect(w.seen[0]).toMatchObject({ port: 8002, body: 3 });
  });

  it('proxy_read_timeout gives 504; a smuggling response gives 502', async () => {
    const w = world(`upstream slow { server UP:8001; } upstream bad { server UP:8002; }
      server { location /slow { proxy_pass http://slow; proxy_read_timeout 2s; } location /bad { proxy_pass http://bad; } }`);
    w.raw(8001, () => {}); // reads, never answers
    w.raw(8002, (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'));
    const slow = await get(w, '/slow');
    expect(slow.head?.status).toBe(504);
    const bad = await get(w, '/bad');
    expect(bad.head?.status).toBe(502);
  });

  it('streams a 4 MiB body both ways intact (chunked request re-chunked, Content-Length response)', async () => {
    const w = world(`upstream app { server UP:8001; } server { location / { proxy_pass http://app; } }`);
    const big = randomBytes(4 << 20, 9);
    w.upstream(8001, async (req, res) => {
      const parts: Buffer[] = [];
      for await (const c of req.body) parts.push(Buffer.from(c));
      const body = Buffer.concat(parts);
      res.setHeader('Content-Length', body.length);
      await res.write(body);
      res.end();
    });
    const chunked = `${big.length.toString(16)}\r\n`;
    const head = 'PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
    const r = await request(w, Buffer.concat([Buffer.from(head + chunked), big, Buffer.from('\r\n0\r\n\r\n')]));
    expect(r.head?.status).toBe(200);
    expect(r.body.length).toBe(big.length);
    let firstDiff = -1;
    for (let i = 0; i < big.length && firstDiff < 0; i++) if (r.body[i] !== big[i]) firstDiff = i;
    expect(firstDiff).toBe(-1);
  });

  it('keep-alive: one upstream connection serves sequential requests; a connection whose response broke off is not reused', async () => {
    const w = world(`upstream app { server UP:8001; keepalive 4; } server { location / { proxy_pass http://app; } }`);
    let n = 0;
    w.upstream(8001, (req, res) => {
      n++;
      if (req.path === '/short') {
        res.setHeader('Content-Length', 10);
        return res.write('12345').then(() => {
          throw new Error('stop mid-body');
        });
      }
      res.end('ok');
    });
    for (let i = 0; i < 5; i++) expect((await get(w, '/')).body.toString()).toBe('ok');
    const g = w.app.groups.get('app')!;
    expect(g.poolStats).toMatchObject({ opened: 1, reused: 4 });
    const short = await get(w, '/short');
    expect(short.head?.status).toBe(200);
    expect(short.body.length).toBeLessThan(10); // the client sees the truncation
    expect(g.idleCount).toBe(0);
    expect((await get(w, '/')).body.toString()).toBe('ok');
    expect(g.poolStats.opened).toBe(2);
    expect(n).toBe(7);
  });

  it('our side ends in TIME-WAIT when we close an idle pooled connection; with Connection: close the upstream closes first', async () => {
    const w = world(`upstream pooled { server UP:8001; keepalive 2; keepalive_timeout 1s; } upstream closing { server UP:8002; }
      server { location /p { proxy_pass http://pooled; } location /c { proxy_pass http://closing; } }`);
    w.upstream(8001);
    w.upstream(8002);
    expect((await get(w, '/c')).body.toString()).toBe('8002');
    expect(w.seen[0]!.fields).toContain('connection: close');
    await w.sim.clock.sleep(3000);
    const toUpstream = (port: number) => w.sim.a.connections().filter((c) => c.remote.endsWith(`:${port}`));
    expect(toUpstream(8002).map((c) => c.state)).toEqual([]); // passive close: no TIME-WAIT here
    expect((await get(w, '/p')).body.toString()).toBe('8001');
    expect(toUpstream(8001).map((c) => c.state)).toEqual(['ESTABLISHED']);
    await w.sim.clock.sleep(1500);
    expect(toUpstream(8001).map((c) => c.state)).toEqual(['TIME-WAIT']);
  });
});
