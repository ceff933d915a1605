/**
 * The built-in HTTP server's fast path (HttpServer.handleStream over a TcpStream, no Node streams)
 * against its general path (handleConnection over a TcpSocket, a stream.Duplex): the same client
 * script, on two simulations with the same seed, must get byte-identical responses, the same end
 * of the connection (FIN or RST, who closes first) and the same TCP state transitions on the server.
 * Covers keep-alive, pipelining, backpressure from a client that stops reading, request bodies
 * (length and chunked), half-close, malformed input, 100-continue and the idle timeout.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createNetstackApp } from '../../src/http/routes.js';
import { HttpServer } from '../../src/http/server.js';
import { B_ADDR, createSim, randomBytes } from '../helpers/sim.js';
import type { Sim } from '../helpers/sim.js';

type Path = 'duplex' | 'fast';

/** One step of a client script. */
type Step =
  | { send: string | Buffer }
  | { end: true }
  | { pause: true }
  | { resume: true }
  /** Let virtual time pass (ms). */
  | { wait: number }
  /** Note how many request bytes the server's TCP has taken in (Outcome.probes). */
  | { probe: true };

interface Outcome {
  /** Everything the client received, with the Date field blanked (it is the wall clock). */
  bytes: string;
  events: string[];
  serverStates: string[];
  clientStates: string[];
  /** What the server's counters say (requests, responses, timeouts). */
  http: Record<string, number>;
  /** Per probe step: bytes the server connection received so far, and its receive window. */
  probes: Array<{ received: number; rcvWnd: number }>;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface ScriptOptions {
  idleTimeoutMs?: number;
  /** The server's TCP buffers (bytes). */
  buffers?: number;
}

async function runScript(path: Path, steps: Step[], seed: number, opts: ScriptOptions = {}): Promise<Outcome> {
  const buffers = opts.buffers === undefined ? {} : { rcvBuf: opts.buffers, sndBuf: opts.buffers };
  const sim: Sim = createSim({ seed, tcp: { msl: 1000 }, tcpB: buffers });
  const app = createNetstackApp({ addr: 'B', startedAt: 0, stats: () => ({}), connections: () => [] });
  const http = new HttpServer({ handler: app, clock: sim.clock, idleTimeoutMs: opts.idleTimeoutMs ?? 5000 });
  if (path === 'duplex') sim.b.createServer({ allowHalfOpen: true }, (s) => http.handleConnection(s)).listen(80);
  else sim.b.createServer({ onStream: (s) => http.handleStream(s) }).listen(80);
  await sim.clock.sleep(1);

  const socket = sim.a.connect({ host: B_ADDR, port: 80, allowHalfOpen: true });
  const received: Buffer[] = [];
  const events: string[] = [];
  socket.on('data', (d: Buffer) => received.push(d));
  socket.on('end', () => events.push('end'));
  socket.on('close', () => events.push('close'));
  socket.on('error', (e: Error & { code?: string }) => events.push(`error ${e.code}`));
  expect(await sim.clock.run(() => socket.connecting && events.length === 0, 10_000), `seed ${seed}: connect`).toBe(true);

  const probes: Outcome['probes'] = [];
  for (const step of steps) {
    if ('probe' in step) {
      const conn = sim.b.tcp.connectionList()[0]!;
      probes.push({ received: conn.bytesReceived, rcvWnd: conn.rcv.window() });
    }
    if ('send' in step) socket.write(step.send);
    else if ('end' in step) socket.end();
    else if ('pause' in step) socket.pause();
    else if ('resume' in step) socket.resume();
    await sim.clock.run(() => true, 0);
    await sim.clock.sleep('wait' in step ? step.wait : 50);
  }
  // Until the connection is over on both sides (bounded in virtual time).
  await sim.clock.run(() => !events.includes('close') || sim.a.tcp.connectionCount + sim.b.tcp.connectionCount > 0, 120_000);
  const bytes = Buffer.concat(received)
    .toString('latin1')
    .replace(/\r\nDate: [^\r]*\r\n/g, '\r\nDate: -\r\n');
  const stats = http.stats;
  return { bytes, events, serverStates: sim.states('b'), clientStates: sim.states('a'), http: { ...stats }, probes };
}

/** Both paths, the same script and seed: everything observable must be equal. */
async function same(steps: Step[], seed = 1, opts: ScriptOptions = {}): Promise<Outcome> {
  return (await sameBoth(steps, seed, opts)).fast;
}

async function sameBoth(steps: Step[], seed = 1, opts: ScriptOptions = {}): Promise<{ duplex: Outcome; fast: Outcome }> {
  const duplex = await runScript('duplex', steps, seed, opts);
  const fast = await runScript('fast', steps, seed, opts);
  expect(fast.bytes.length, `seed ${seed}: response bytes`).toBe(duplex.bytes.length);
  if (fast.bytes !== duplex.bytes) {
    let i = 0;
    while (fast.bytes[i] === duplex.bytes[i]) i++;
    const around = (s: string) => JSON.stringify(s.slice(Math.max(0, i - 200), i + 100));
    expect.fail(`seed ${seed}: the responses differ at byte ${i}:\nduplex ${around(duplex.bytes)}\nfast   ${around(fast.bytes)}`);
  }
  expect(fast.events, `seed ${seed}: client events`).toEqual(duplex.events);
  expect(fast.serverStates, `seed ${seed}: server transitions`).toEqual(duplex.serverStates);
  expect(fast.clientStates, `seed ${seed}: client transitions`).toEqual(duplex.clientStates);
  expect(fast.http, `seed ${seed}: server counters`).toEqual(duplex.http);
  return { duplex, fast };
}

const get = (path: string, extra = '') => ({ send: `GET ${path} HTTP/1.1\r\nHost: b\r\n${extra}\r\n` });

describe('HTTP server fast path (TcpStream) vs the Duplex path', () => {
  it('keep-alive requests one after another, then Connection: close', async () => {
    const o = await same([get('/bytes/128'), get('/bytes/5000'), get('/nope'), get('/bytes/10', 'Connection: close\r\n')]);
    expect(o.bytes.match(/HTTP\/1\.1 /g)).toHaveLength(4);
    // The server's FIN; the client is half-open (allowHalfOpen) and never closes its side.
    expect(o.events).toEqual(['end']);
    // The server closed first.
    expect(o.serverStates).toContain('ESTABLISHED>FIN-WAIT-1');
  });

  it('pipelined requests in one write are answered in order', async () => {
    const reqs = [
      'GET /bytes/1 HTTP/1.1\r\nHost: b\r\n\r\n',
      'HEAD /bytes/300000 HTTP/1.1\r\nHost: b\r\n\r\n',
      'GET /bytes/300000 HTTP/1.1\r\nHost: b\r\n\r\n',
      'DELETE / HTTP/1.1\r\nHost: b\r\n\r\n',
      'GET /bytes/2 HTTP/1.0\r\n\r\n',
    ];
    const o = await same([{ send: reqs.join('') }]);
    const statuses = [...o.bytes.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '200', '200', '405', '200']);
  });

  it('backpressure: a client that stops reading a 4 MB body gets every byte once it reads again', async () => {
    const o = await same([{ pause: true }, get('/bytes/4000000', 'Connection: close\r\n'), { wait: 3000 }, { resume: true }]);
    const body = Buffer.from(o.bytes.slice(o.bytes.indexOf('\r\n\r\n') + 4), 'latin1');
    const expected = Buffer.alloc(4_000_000);
    for (let i = 0; i < expected.length; i++) expected[i] = i & 0xff;
    expect(sha(body)).toBe(sha(expected));
  });

  it('backpressure: pipelined requests from a client that does not read stop being read (the window closes)', async () => {
    // 600 requests (under the server's 1000 per connection) of ~1 KB each, ~5 MB of responses.
    const one = `GET /bytes/8000 HTTP/1.1\r\nHost: b\r\nX-Pad: ${'p'.repeat(1000)}\r\n\r\n`;
    const n = 600;
    const many = one.repeat(n) + 'GET /bytes/1 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n';
    const steps: Step[] = [{ pause: true }, { send: many }, { wait: 3000 }, { probe: true }, { resume: true }, { wait: 20_000 }];
    const opts = { buffers: 64 * 1024 };
    const { duplex, fast } = await sameBoth(steps, 1, opts);
    for (const o of [duplex, fast]) {
      // Not all of the requests were taken in, and the server advertises no window.
      expect(o.probes[0]!.received).toBeLessThan(many.length - 100_000);
      expect(o.probes[0]!.rcvWnd).toBe(0);
      expect(o.bytes.match(/HTTP\/1\.1 200/g)).toHaveLength(n + 1);
    }
  });

  it('request bodies: POST /echo with Content-Length and chunked, 1 MB', async () => {
    const body = randomBytes(1 << 20, 5);
    const head = `POST /echo HTTP/1.1\r\nHost: b\r\nContent-Length: ${body.length}\r\n\r\n`;
    const chunked = 'POST /echo HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n';
    const o = await same([{ send: Buffer.concat([Buffer.from(head), body]) }, { wait: 500 }, { send: chunked }, { wait: 200 }, get('/bytes/5', 'Connection: close\r\n')]);
    expect(o.bytes).toContain(body.toString('latin1'));
    expect(o.bytes).toContain('Transfer-Encoding: chunked');
  });

  it('half-close: the client sends FIN right after its request and still gets the whole response', async () => {
    const o = await same([get('/bytes/200000'), { end: true }]);
    expect(o.bytes).toContain('Content-Length: 200000');
    expect(o.events).toEqual(['end', 'close']);
  });

  it('malformed input: 400 and a lingering close; a too-large body: 413', async () => {
    const bad = await same([{ send: 'GET / HTTP/1.1\r\nHost b\r\n\r\n' }]);
    expect(bad.bytes).toMatch(/^HTTP\/1\.1 400 /);
    const big = await same([{ send: 'POST /bytes/1 HTTP/1.1\r\nHost: b\r\nContent-Length: 999999999\r\n\r\nxx' }]);
    expect(big.bytes).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('Expect: 100-continue gets 100 Continue, then the answer', async () => {
    const o = await same([{ send: 'POST /echo HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n' }, { send: 'hello' }, { end: true }]);
    expect(o.bytes).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  });

  it('an idle keep-alive connection is closed after idleTimeoutMs', async () => {
    const o = await same([get('/bytes/3'), { wait: 3000 }], 1, { idleTimeoutMs: 2000 });
    expect(o.http['idle_timeout']).toBe(1);
    expect(o.events).toEqual(['end']);
  });

  it('the same for several seeds (ISNs, ports) over keep-alive and pipelining', async () => {
    for (const seed of [2, 3, 4]) {
      await same([get('/bytes/700'), { send: 'GET /bytes/1 HTTP/1.1\r\nHost: b\r\n\r\nGET /bytes/2 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n' }], seed);
    }
  });
});
