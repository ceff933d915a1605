/**
 * Node's own http.Server serving over netstack TcpSockets (`server.emit('connection', socket)`):
 * the compatibility test for the socket's Duplex semantics (backpressure, half-close, end,
 * destroy, setNoDelay/setTimeout). The client side writes raw HTTP/1.1 from a netstack socket
 * and parses the responses itself.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { B_ADDR, createSim, randomBytes } from '../helpers/sim.js';
import type { Sim, SimOptions } from '../helpers/sim.js';

const BIG = randomBytes(10 * 1024 * 1024, 777);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Response {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * An incremental HTTP/1.1 response reader, just enough for these tests: status line, headers,
 * then a Content-Length or chunked body.
 */
class ResponseReader {
  private buf: Buffer = Buffer.alloc(0);
  /** Data not yet joined to `buf`, and how many bytes the next parse needs in all. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private need = 0;
  readonly responses: Response[] = [];

  push(data: Buffer): void {
    this.pending.push(data);
    this.pendingBytes += data.length;
    // Join only when a whole response can be there (a 10 MB body arrives in thousands of pieces).
    if (this.buf.length + this.pendingBytes < this.need) return;
    this.buf = Buffer.concat([this.buf, ...this.pending]);
    this.pending = [];
    this.pendingBytes = 0;
    this.need = 0;
    for (let r = this.parseOne(); r; r = this.parseOne()) this.responses.push(r);
  }

  private parseOne(): Response | undefined {
    const headEnd = this.buf.indexOf('\r\n\r\n');
    if (headEnd < 0) return undefined;
    const lines = this.buf.subarray(0, headEnd).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0]!);
    if (!m) throw new Error(`bad status line: ${lines[0]}`);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    let at = headEnd + 4;
    let body: Buffer;
    if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = this.buf.indexOf('\r\n', at);
        if (lineEnd < 0) return undefined;
        const size = parseInt(this.buf.subarray(at, lineEnd).toString('latin1'), 16);
        if (this.buf.length < lineEnd + 2 + size + 2) return undefined;
        parts.push(this.buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else {
      const len = Number(headers['content-length'] ?? 0);
      if (this.buf.length < at + len) {
        this.need = at + len;
        return undefined;
      }
      body = Buffer.from(this.buf.subarray(at, at + len));
      at += len;
    }
    this.buf = this.buf.subarray(at);
    return { status: Number(m[1]), headers, body };
  }
}

/** Node's http.Server on B:80, fed by netstack's TcpServer. */
function serveHttp(sim: Sim): { server: http.Server; sockets: TcpSocket[] } {
  const sockets: TcpSocket[] = [];
  const server = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/digest') {
      // Read a request body through the socket's readable side.
      const hash = createHash('sha256');
      let n = 0;
      req.on('data', (d: Buffer) => {
        hash.update(d);
        n += d.length;
      });
      req.on('end', () => res.end(`${n} ${hash.digest('hex')}`));
      return;
    }
    if (req.url === '/big') {
      // 10 MB in pieces, respecting backpressure: res.write() returns false when the socket is full.
      res.setHeader('content-length', BIG.length);
      let off = 0;
      const pump = (): void => {
        while (off < BIG.length) {
          const piece = BIG.subarray(off, off + 100_000);
          off += piece.length;
          if (!res.write(piece)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    if (req.url === '/chunked') {
      res.write('first;');
      res.write('second;');
      res.end('third');
      return;
    }
    res.setHeader('content-type', 'text/plain');
    res.end(`hello from ${req.url}`);
  });
  sim.b
    .createServer((socket) => {
      sockets.push(socket);
      server.emit('connection', socket);
    })
    .listen(80);
  return { server, sockets };
}

/** A raw HTTP/1.1 client connection from A. */
async function client(sim: Sim) {
  const socket = sim.a.connect({ host: B_ADDR, port: 80 });
  const reader = new ResponseReader();
  const events: string[] = [];
  socket.on('data', (d: Buffer) => reader.push(d));
  socket.on('end', () => events.push('end'));
  socket.on('close', () => events.push('close'));
  socket.on('error', (e: Error & { code?: string }) => events.push(`error ${e.code}`));
  const connected = await sim.clock.run(() => !events.length && socket.connecting, 60_000);
  expect(connected, `seed ${sim.seed}: connect`).toBe(true);
  /** Send `request` and wait until `count` responses in all have arrived. */
  const exchange = async (request: string | Buffer, count: number, limit = 600_000) => {
    socket.write(request);
    const ok = await sim.clock.run(() => reader.responses.length < count && !events.includes('close'), limit);
    expect(ok, `seed ${sim.seed}: no response ${count} (events ${events})\n${sim.trace.join('\n')}`).toBe(true);
    return reader.responses[count - 1]!;
  };
  return { socket, reader, events, exchange };
}

async function httpSuite(opts: SimOptions) {
  const sim = createSim({ tcp: { msl: 1000 }, ...opts });
  const { server } = serveHttp(sim);
  await sim.clock.sleep(1);
  const c = await client(sim);

  // Keep-alive: two requests, one after the other, on the same connection.
  const r1 = await c.exchange('GET /one HTTP/1.1\r\nHost: b\r\n\r\n', 1);
  expect(r1.status).toBe(200);
  expect(r1.body.toString()).toBe('hello from /one');
  expect(r1.headers['connection']).toBe('keep-alive');
  const r2 = await c.exchange('GET /two HTTP/1.1\r\nHost: b\r\n\r\n', 2);
  expect(r2.body.toString()).toBe('hello from /two');

  // A chunked response, then a 10 MB body, still on the same connection.
  const r3 = await c.exchange('GET /chunked HTTP/1.1\r\nHost: b\r\n\r\n', 3);
  expect(r3.headers['transfer-encoding']).toBe('chunked');
  expect(r3.body.toString()).toBe('first;second;third');
  const r4 = await c.exchange('GET /big HTTP/1.1\r\nHost: b\r\n\r\n', 4, 3_600_000);
  expect(r4.body.length).toBe(BIG.length);
  expect(sha(r4.body), `seed ${sim.seed}: 10 MB body`).toBe(sha(BIG));

  // A 1 MB request body, read by the server through the socket's readable side.
  const upload = randomBytes(1024 * 1024, 778);
  const head = `POST /digest HTTP/1.1\r\nHost: b\r\nContent-Length: ${upload.length}\r\n\r\n`;
  const r5 = await c.exchange(Buffer.concat([Buffer.from(head), upload]), 5, 3_600_000);
  expect(r5.body.toString()).toBe(`${upload.length} ${sha(upload)}`);

  // Two pipelined requests in one write; the second asks the server to close.
  c.socket.write('GET /six HTTP/1.1\r\nHost: b\r\n\r\nGET /seven HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n');
  const ok = await sim.clock.run(() => !c.events.includes('close'), 600_000);
  expect(ok, `seed ${sim.seed}: the server did not close (events ${c.events})`).toBe(true);
  expect(c.reader.responses.map((r) => r.body.toString()).slice(5)).toEqual(['hello from /six', 'hello from /seven']);
  expect(c.reader.responses[6]!.headers['connection']).toBe('close');
  expect(c.events).toEqual(['end', 'close']);

  // Everything is torn down: the server closed first, so TIME-WAIT is on B.
  await sim.clock.run(() => sim.a.tcp.connectionCount + sim.b.tcp.connectionCount > 0, 600_000);
  expect(sim.a.connections()).toEqual([]);
  expect(sim.b.connections()).toEqual([]);
  expect(sim.states('b')).toContain('FIN-WAIT-2>TIME-WAIT');
  expect(sim.states('a')).toContain('CLOSE-WAIT>LAST-ACK');
  server.close();
}

describe("Node's http.Server over netstack sockets", () => {
  it('keep-alive, chunked, a 10 MB response, a 1 MB upload, pipelining and Connection: close (perfect link)', async () => {
    await httpSuite({ seed: 1 });
  });

  it('the same over a link with loss, duplication, reordering and jitter', async () => {
    const faults = { loss: 0.02, duplicate: 0.01, reorder: 0.02, corrupt: 0.005, delayMs: 5, jitterMs: 3 };
    await httpSuite({ seed: 2, aToB: faults, bToA: faults });
  });
});
