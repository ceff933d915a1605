import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { allowNetworks, type CanSeeDetails } from '../../src/http/access.js';
import { CONNECTIONS_PAGE, DETAILS_WITHHELD, createNetstackApp, type StackView } from '../../src/http/routes.js';
import { HttpServer, type Handler, type HttpRequest, type HttpResponse, type HttpServerOptions } from '../../src/http/server.js';
import { seededRandom } from '../../src/runtime/random.js';

// ---------------------------------------------------------------------------
// Harness: HttpServer behind a kernel TCP listener on 127.0.0.1, raw net clients.
// ---------------------------------------------------------------------------

interface Harness {
  port: number;
  http: HttpServer;
  /** Server-side sockets, to look at their buffers. */
  serverSockets: net.Socket[];
}

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const view: StackView = {
  addr: '10.0.0.2',
  startedAt: Date.now() - 3_723_000,
  stats: () => ({ 'ip.in': 10, 'ip.out': 7, tcpRetransmits: 2, 'tcp.bad-checksum': 1 }),
  connections: () => [
    { local: '10.0.0.2:80', remote: '10.0.0.1:40000', state: 'ESTABLISHED', sndUna: 1, sndNxt: 2, rcvNxt: 3, sndWnd: 65535, rcvWnd: 65535, srtt: 1, rto: 200, retransmits: 0, cwnd: 14600, ssthresh: 65535 },
    { local: '10.0.0.2:80', remote: '10.0.0.1:40001', state: 'ESTABLISHED', sndUna: 1, sndNxt: 2, rcvNxt: 3, sndWnd: 65535, rcvWnd: 65535, srtt: 1, rto: 200, retransmits: 0 },
    { local: '10.0.0.2:80', remote: '10.0.0.1:40002', state: 'TIME-WAIT', sndUna: 1, sndNxt: 2, rcvNxt: 3, sndWnd: 0, rcvWnd: 0, srtt: 1, rto: 200, retransmits: 1 },
  ],
};

/** The harness's clients connect from 127.0.0.1: by default that address may see connection details. */
const LOOPBACK_ONLY = allowNetworks([{ addr: 0x7f000001, prefix: 32 }]);

async function startServer(opts: Partial<HttpServerOptions> & { root?: string; canSeeDetails?: CanSeeDetails } = {}): Promise<Harness> {
  const app = createNetstackApp(view, { root: opts.root, canSeeDetails: opts.canSeeDetails ?? LOOPBACK_ONLY });
  const http = new HttpServer({ handler: opts.handler ?? app, ...opts });
  const serverSockets: net.Socket[] = [];
  const listener = net.createServer({ allowHalfOpen: true }, (s) => {
    serverSockets.push(s);
    http.handleConnection(s);
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    http.close();
    for (const s of serverSockets) s.destroy();
    await new Promise((resolve) => listener.close(resolve));
  });
  return { port: (listener.address() as net.AddressInfo).port, http, serverSockets };
}

interface Response {
  status: number;
  reason: string;
  headers: Map<string, string>;
  body: Buffer;
  /** Bytes of body seen (also when streamed to a sink instead of kept). */
  bodyLength: number;
}

/** A raw HTTP/1.1 client: what it sends is exactly what the test writes. */
class Client {
  private chunks: Buffer[] = [];
  private length = 0;
  /** The server sent FIN. */
  ended = false;
  closed = false;
  error: (Error & { code?: string }) | undefined;
  private wake: (() => void) | undefined;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.length += c.length;
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', (e) => {
      this.error = e;
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  static async connect(port: number): Promise<Client> {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new Client(socket);
    cleanups.push(() => {
      socket.destroy();
    });
    return c;
  }

  send(data: string | Buffer): boolean {
    return this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Wait for more input; false if the stream is over. */
  private async more(): Promise<boolean> {
    if (this.ended || this.closed) return false;
    await new Promise<void>((resolve) => (this.wake = resolve));
    return true;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return out;
  }

  async readLine(): Promise<string> {
    for (;;) {
      const all = Buffer.concat(this.chunks);
      this.chunks = all.length ? [all] : [];
      const i = all.indexOf('\r\n');
      if (i >= 0) return this.take(i + 2).toString('latin1', 0, i);
      if (!(await this.more())) throw new Error(`connection ended inside a line: ${JSON.stringify(all.toString('latin1'))}`);
    }
  }

  /** Exactly n bytes, streamed to sink as they come. */
  async readExact(n: number, sink: (b: Buffer) => void): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.length === 0 && !(await this.more())) throw new Error(`connection ended with ${left} body bytes missing`);
      while (this.chunks.length > 0 && left > 0) {
        const c = this.chunks[0]!;
        const k = Math.min(left, c.length);
        sink(c.subarray(0, k));
        left -= k;
        this.length -= k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
  }

  async readToEnd(sink: (b: Buffer) => void): Promise<void> {
    for (;;) {
      for (const c of this.chunks) sink(c);
      this.chunks = [];
      this.length = 0;
      if (!(await this.more())) break;
    }
  }

  /**
   * One response. `head: true` for a response to HEAD (no body). With `sink`, the body
   * is streamed there instead of kept.
   */
  async readResponse(opts: { head?: boolean; sink?: (b: Buffer) => void } = {}): Promise<Response> {
    const statusLine = await this.readLine();
    const m = /^HTTP\/1\.1 (\d{3}) (.*)$/.exec(statusLine);
    if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
    const headers = new Map<string, string>();
    for (let line = await this.readLine(); line !== ''; line = await this.readLine()) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    const status = Number(m[1]);
    const kept: Buffer[] = [];
    let bodyLength = 0;
    const sink = (b: Buffer) => {
      bodyLength += b.length;
      if (opts.sink) opts.sink(b);
      else kept.push(Buffer.from(b));
    };
    if (opts.head || status < 200 || status === 204 || status === 304) {
      // no body
    } else if (headers.get('transfer-encoding') === 'chunked') {
      for (;;) {
        const size = parseInt(await this.readLine(), 16);
        if (size === 0) break;
        await this.readExact(size, sink);
        expect(await this.readLine()).toBe('');
      }
      expect(await this.readLine()).toBe(''); // no trailers from this server
    } else if (headers.has('content-length')) {
      await this.readExact(Number(headers.get('content-length')), sink);
    } else {
      await this.readToEnd(sink);
    }
    return { status, reason: m[2]!, headers, body: Buffer.concat(kept), bodyLength };
  }

  /** Resolves once the server has sent FIN (or the socket closed). */
  async waitEnd(): Promise<void> {
    while (!this.ended && !this.closed) await this.more();
  }

  /** Read anything the server still sends until it closes; returns those bytes. */
  async rest(): Promise<Buffer> {
    const out: Buffer[] = [];
    await this.readToEnd((b) => out.push(Buffer.from(b)));
    return Buffer.concat(out);
  }
}

/** Bounded polling for a condition the test cannot be told about directly. */
async function until(cond: () => boolean, what: string, tries = 500, everyMs = 10): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (cond()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function patternHash(n: number): string {
  const h = createHash('sha256');
  const block = Buffer.alloc(65536);
  for (let i = 0; i < block.length; i++) block[i] = i & 0xff;
  for (let left = n; left > 0; left -= block.length) h.update(block.subarray(0, Math.min(left, block.length)));
  return h.digest('hex');
}

function randomBytes(n: number, seed: number): Buffer {
  const rnd = seededRandom(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE((rnd() * 2 ** 32) >>> 0, Math.min(i, n - 4));
  return b;
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

// ---------------------------------------------------------------------------

describe('HttpServer: connection management', () => {
  it('keeps an HTTP/1.1 connection alive across requests', async () => {
    const { port, http } = await startServer();
    const c = await Client.connect(port);
    for (let i = 0; i < 5; i++) {
      c.send(get('/bytes/10'));
      const r = await c.readResponse();
      expect(r.status).toBe(200);
      expect(r.headers.get('connection')).toBeUndefined();
      expect(r.headers.get('server')).toBe('netstack');
      expect(r.headers.get('date')).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
      expect([...r.body]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
    expect(c.ended).toBe(false);
    expect(http.connectionCount).toBe(1);
    expect(http.stats.requests).toBe(5);
  });

  it('closes an HTTP/1.0 connection after the response (FIN, not RST)', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send('GET /bytes/3 HTTP/1.0\r\n\r\n');
    const r = await c.readResponse();
    expect(r.status).toBe(200);
    expect(r.headers.get('connection')).toBe('close');
    expect(r.headers.get('content-length')).toBe('3');
    await c.waitEnd();
    expect(c.ended).toBe(true);
    expect(c.error).toBeUndefined();
  });

  it('keeps an HTTP/1.0 connection with Connection: keep-alive', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    for (let i = 0; i < 2; i++) {
      c.send('GET /bytes/3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
      const r = await c.readResponse();
      expect(r.headers.get('connection')).toBe('keep-alive');
    }
    expect(c.ended).toBe(false);
  });

  it('honours Connection: close from an HTTP/1.1 client', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send(get('/bytes/1', 'Connection: close\r\n'));
    const r = await c.readResponse();
    expect(r.headers.get('connection')).toBe('close');
    await c.waitEnd();
    expect(c.error).toBeUndefined();
  });

  it('answers pipelined requests in order, in one write', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send(
      get('/bytes/5') +
        'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello' +
        'HEAD /bytes/7 HTTP/1.1\r\nHost: t\r\n\r\n' +
        'POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n' +
        get('/nope') +
        get('/bytes/2'),
    );
    const r1 = await c.readResponse();
    const r2 = await c.readResponse();
    const r3 = await c.readResponse({ head: true });
    const r4 = await c.readResponse();
    const r5 = await c.readResponse();
    const r6 = await c.readResponse();
    expect([...r1.body]).toEqual([0, 1, 2, 3, 4]);
    expect(r2.body.toString()).toBe('hello');
    expect(r3.headers.get('content-length')).toBe('7');
    expect(r4.headers.get('transfer-encoding')).toBe('chunked');
    expect(r4.body.toString()).toBe('abcde');
    expect(r5.status).toBe(404);
    expect([...r6.body]).toEqual([0, 1]);
  });

  it('keeps pipelined responses in request order even when the first handler is slower', async () => {
    const handler: Handler = async (req, res) => {
      if (req.path === '/slow') await sleep(30);
      res.end(req.path);
    };
    const { port } = await startServer({ handler });
    const c = await Client.connect(port);
    c.send(get('/slow') + get('/fast') + get('/slow') + get('/fast'));
    const bodies = [];
    for (let i = 0; i < 4; i++) bodies.push((await c.readResponse()).body.toString());
    expect(bodies).toEqual(['/slow', '/fast', '/slow', '/fast']);
  });

  it('handles a request split into single bytes', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    const req = 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd';
    for (const ch of req) {
      c.send(ch);
      await sleep(0);
    }
    expect((await c.readResponse()).body.toString()).toBe('abcd');
  });

  it('caps requests per connection: the last response says close, then FIN', async () => {
    const { port } = await startServer({ maxRequestsPerConnection: 3 });
    const c = await Client.connect(port);
    c.send(get('/bytes/1') + get('/bytes/1') + get('/bytes/1') + get('/bytes/1'));
    const rs = [await c.readResponse(), await c.readResponse(), await c.readResponse()];
    expect(rs.map((r) => r.headers.get('connection'))).toEqual([undefined, undefined, 'close']);
    expect((await c.rest()).length).toBe(0); // the 4th request is not answered
    expect(c.ended).toBe(true);
  });

  it('finishes the response when the client half-closes after its request', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send(get('/bytes/100000') + get('/bytes/3'));
    c.socket.end();
    const r1 = await c.readResponse({ sink: () => {} });
    const r2 = await c.readResponse();
    expect(r1.bodyLength).toBe(100000);
    expect([...r2.body]).toEqual([0, 1, 2]);
    await c.waitEnd();
    expect(c.error).toBeUndefined();
  });

  it('closes promptly when the client half-closes in the middle of a body nobody reads', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send('POST /nope HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123456789');
    expect((await c.readResponse()).status).toBe(404);
    c.socket.end(); // the other 990 bytes will never come
    await until(() => c.ended, 'the server to close', 300);
    expect(c.error).toBeUndefined();
  });

  it('a client that aborts its POST costs one debug line without a stack trace, and a counter', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
    const { port, http } = await startServer({ logger });
    // One client ends (FIN) mid-body, one resets mid-body.
    const a = await Client.connect(port);
    a.send('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(5000));
    await until(() => http.stats.requests === 1, 'the first request');
    a.socket.end();
    await until(() => http.stats.aborted_requests === 1, 'the first abort to be counted');
    const b = await Client.connect(port);
    b.send('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(5000));
    await until(() => http.stats.requests === 2, 'the second request');
    b.socket.resetAndDestroy();
    await until(() => http.stats.aborted_requests === 2, 'the second abort to be counted');
    expect(http.stats.handler_error).toBeUndefined();
    const records = lines.map((l) => JSON.parse(l) as { level: number; msg: string; err?: unknown; stack?: unknown });
    expect(records.filter((r) => r.level >= 40)).toEqual([]); // no warning or error
    const aborts = records.filter((r) => r.msg === 'http: request aborted by the client');
    expect(aborts).toHaveLength(2);
    for (const r of aborts) expect(JSON.stringify(r)).not.toMatch(/\bat .*:\d+:\d+|"stack"/);
  });

  it('closes an idle keep-alive connection after idleTimeoutMs (FIN, nothing sent)', async () => {
    const { port, http } = await startServer({ idleTimeoutMs: 50 });
    const c = await Client.connect(port);
    c.send(get('/bytes/1'));
    await c.readResponse();
    expect(await c.rest()).toHaveLength(0);
    expect(c.ended).toBe(true);
    expect(c.error).toBeUndefined();
    c.socket.end(); // our FIN: the server's lingering close ends at once
    await until(() => http.connectionCount === 0, 'server to drop the connection');
    expect(http.stats.idle_timeout).toBe(1);
  });

  it('answers 408 and closes when the head is not complete within headersTimeoutMs', async () => {
    const { port, http } = await startServer({ headersTimeoutMs: 50, idleTimeoutMs: 10_000 });
    const c = await Client.connect(port);
    c.send('GET / HTTP/1.1\r\nHost: t\r\n'); // never finished
    const r = await c.readResponse();
    expect(r.status).toBe(408);
    expect(r.headers.get('connection')).toBe('close');
    await c.waitEnd();
    expect(http.stats.headers_timeout).toBe(1);
  });

  it('a slowloris trickling header bytes is still cut off by headersTimeoutMs', async () => {
    const { port } = await startServer({ headersTimeoutMs: 100, idleTimeoutMs: 10_000, sendTimeoutMs: 10_000 });
    const c = await Client.connect(port);
    c.send('GET / HTTP/1.1\r\n');
    for (let i = 0; i < 200 && !c.ended && !c.closed; i++) {
      c.send(`X-${i}: y\r\n`);
      await sleep(10);
    }
    const r = await c.readResponse();
    expect(r.status).toBe(408);
  });

  it('aborts a request that makes no progress for sendTimeoutMs (client stops reading)', async () => {
    const { port, http } = await startServer({ sendTimeoutMs: 100 });
    const c = await Client.connect(port);
    c.socket.pause();
    c.send(get('/bytes/1099511627776'));
    await until(() => http.stats.send_timeout === 1, 'the send timeout');
    await until(() => http.connectionCount === 0, 'the connection to go');
  });

  it('Connection: close after a big body: a client that reads late still gets every byte', async () => {
    const { port } = await startServer({ lingerMs: 1 });
    const c = await Client.connect(port);
    c.socket.pause();
    const n = 8_000_000;
    c.send(`GET /bytes/${n} HTTP/1.0\r\n\r\n`);
    await sleep(100);
    c.socket.resume();
    const h = createHash('sha256');
    const r = await c.readResponse({ sink: (b) => h.update(b) });
    expect(r.headers.get('connection')).toBe('close');
    expect(r.bodyLength).toBe(n);
    expect(h.digest('hex')).toBe(patternHash(n));
    await c.waitEnd();
    expect(c.error).toBeUndefined();
  });

  it('lingering close gives up after lingerMs on a client that never closes', async () => {
    const { port, http } = await startServer({ lingerMs: 30 });
    const c = await Client.connect(port);
    c.send('GET /bytes/5 HTTP/1.0\r\n\r\n');
    expect((await c.readResponse()).status).toBe(200);
    await c.waitEnd(); // the server's FIN; this client never sends its own
    await until(() => http.connectionCount === 0, 'the server to let go');
    expect(http.stats.linger_timeout).toBe(1);
  });

  it('server.close(): idle connections get FIN', async () => {
    const { port, http } = await startServer();
    const c = await Client.connect(port);
    c.send(get('/bytes/1'));
    await c.readResponse();
    http.close();
    await c.waitEnd();
    expect(c.ended).toBe(true);
  });
});

describe('HttpServer: errors', () => {
  const cases: Array<[string, string, number]> = [
    ['space before colon', 'GET / HTTP/1.1\r\nHost: t\r\nX : y\r\n\r\n', 400],
    ['CL + TE', 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['conflicting CL', 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 400],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n', 400],
    ['bare LF', 'GET / HTTP/1.1\nHost: t\n\n', 400],
    ['no Host', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: t\r\n\r\n', 505],
    ['unknown coding', 'POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
    ['long URI', `GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: t\r\n\r\n`, 414],
    ['huge header', `GET / HTTP/1.1\r\nHost: t\r\nX: ${'a'.repeat(20000)}\r\n\r\n`, 431],
    ['body too large for /echo', `POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${2 ** 31}\r\n\r\n`, 413],
    ['body too large elsewhere', 'POST /bytes/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n', 413],
    ['unsupported expectation', 'POST /echo HTTP/1.1\r\nHost: t\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx', 417],
    ['bad chunk size', 'POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
  ];
  for (const [name, request, status] of cases) {
    it(`${name} → ${status} with Connection: close, then FIN`, async () => {
      const { port } = await startServer();
      const c = await Client.connect(port);
      c.send(request);
      const r = await c.readResponse();
      expect(r.status).toBe(status);
      expect(r.headers.get('connection')).toBe('close');
      expect(await c.rest()).toHaveLength(0);
      expect(c.ended).toBe(true);
      expect(c.error).toBeUndefined();
    });
  }

  it("a handler's per-request body limit holds for a chunked body and a Content-Length alike; a bodiless request is served", async () => {
    const seen: string[] = [];
    const handler = Object.assign(
      async (req: HttpRequest, res: HttpResponse) => {
        let n = 0;
        for await (const chunk of req.body) n += chunk.byteLength;
        res.end(`${n}`);
      },
      { maxBodyBytes: (head: { target: string }) => (seen.push(head.target), head.target === '/small' ? 10 : 1000) },
    );
    const { port } = await startServer({ handler });
    const ask = async (request: string) => {
      const c = await Client.connect(port);
      c.send(request);
      return c.readResponse();
    };
    expect((await ask('POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n')).status).toBe(413);
    expect((await ask('POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n')).status).toBe(413);
    const fits = await ask('POST /large HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nhello world\r\n0\r\n\r\n');
    expect([fits.status, fits.body.toString()]).toEqual([200, '11']);
    const bodiless = await ask('GET /small HTTP/1.1\r\nHost: t\r\n\r\n');
    expect([bodiless.status, bodiless.body.toString()]).toEqual([200, '0']);
    // Asked only for the requests that announced a body.
    expect(seen).toEqual(['/small', '/small', '/large']);
  });

  it('answers the good request before the malformed one pipelined after it', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send(get('/bytes/2') + 'GET / HTTP/1.1\r\nHost: t\r\nBad Name: y\r\n\r\n' + get('/bytes/2'));
    expect((await c.readResponse()).status).toBe(200);
    expect((await c.readResponse()).status).toBe(400);
    expect(await c.rest()).toHaveLength(0);
  });

  it('a 413 reaches the client even while it keeps sending its body (lingering close)', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${2 ** 31}\r\n\r\n`);
    const junk = Buffer.alloc(256 * 1024, 0x61);
    for (let i = 0; i < 16; i++) c.send(junk);
    const r = await c.readResponse();
    expect(r.status).toBe(413);
    c.socket.end();
    await c.waitEnd();
    expect(c.error).toBeUndefined();
  });

  it('a bad chunk inside a body, before the handler responded: 400 and close', async () => {
    const handler: Handler = async (req, res) => {
      const parts: Uint8Array[] = [];
      for await (const chunk of req.body) parts.push(chunk);
      res.end(Buffer.concat(parts));
    };
    const { port } = await startServer({ handler });
    const c = await Client.connect(port);
    c.send('POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\nabcXX\r\n');
    const r = await c.readResponse();
    expect(r.status).toBe(400);
    expect(r.body.toString()).toContain('bad-chunk-terminator');
    expect(await c.rest()).toHaveLength(0);
    expect(c.ended).toBe(true);
  });

  it('a bad chunk after /echo started answering: the response is cut short by FIN', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send('POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
    // Wait until the echo has begun its chunked response, then send a lying chunk.
    const head = await c.readLine();
    expect(head).toBe('HTTP/1.1 200 OK');
    c.send('3\r\nabcXX\r\n');
    const raw = (await c.rest()).toString('latin1');
    expect(raw).toContain('Transfer-Encoding: chunked');
    expect(raw).toContain('3\r\nabc\r\n');
    expect(raw.endsWith('0\r\n\r\n')).toBe(false); // never a well-formed end
    expect(c.ended).toBe(true);
    expect(c.error).toBeUndefined();
  });

  it('a handler that throws before responding gives 500 and close', async () => {
    const handler: Handler = () => {
      throw new Error('boom');
    };
    const { port, http } = await startServer({ handler });
    const c = await Client.connect(port);
    c.send(get('/'));
    const r = await c.readResponse();
    expect(r.status).toBe(500);
    expect(r.headers.get('connection')).toBe('close');
    await c.waitEnd();
    expect(http.stats.handler_error).toBe(1);
  });

  it('a handler that fails mid-body truncates the response: the client sees FIN before the end', async () => {
    const handler: Handler = async (req, res) => {
      res.setHeader('Content-Length', 100);
      await res.write('0123456789');
      throw new Error('disk on fire');
    };
    const { port } = await startServer({ handler });
    const c = await Client.connect(port);
    c.send(get('/'));
    await expect(c.readResponse()).rejects.toThrow(/missing/);
  });

  it('refuses a bad field name every time, and a bad value under a name it has accepted before', async () => {
    const errors: string[] = [];
    const handler: Handler = (req, res) => {
      for (const [name, value] of [
        ['Bad Name', 'x'],
        ['Bad Name', 'x'],
        ['X-Fine', 'ok'],
        ['X-Fine', 'a\r\nSet-Cookie: b'],
        ['x-fine', 'b\nc'],
        ['Content-Length', 'twelve'],
      ]) {
        try {
          res.setHeader(name!, value!);
        } catch (e) {
          errors.push(String(e));
        }
      }
      res.end('ok');
    };
    const { port } = await startServer({ handler });
    for (let round = 0; round < 2; round++) {
      errors.length = 0;
      const c = await Client.connect(port);
      c.send(get('/'));
      const r = await c.readResponse();
      expect(r.headers.get('x-fine')).toBe('ok');
      expect(r.headers.has('set-cookie')).toBe(false);
      expect(r.headers.get('content-length')).toBe('2');
      expect(errors).toHaveLength(5);
      expect(errors.slice(0, 2).every((e) => /invalid field name/.test(e))).toBe(true);
      expect(errors.slice(2, 4).every((e) => /invalid value/.test(e))).toBe(true);
      expect(errors[4]).toMatch(/Content-Length must be a non-negative integer/);
    }
  });

  it('refuses response splitting in header values', async () => {
    let error: unknown;
    const handler: Handler = (req, res) => {
      try {
        res.setHeader('X-Evil', 'a\r\nSet-Cookie: b');
      } catch (e) {
        error = e;
      }
      res.end('ok');
    };
    const { port } = await startServer({ handler });
    const c = await Client.connect(port);
    c.send(get('/'));
    const r = await c.readResponse();
    expect(r.headers.has('set-cookie')).toBe(false);
    expect(String(error)).toMatch(/invalid value/);
  });
});

describe('HttpServer: responses and framing', () => {
  it('HEAD: headers with the GET Content-Length, no body', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send('HEAD /bytes/1000 HTTP/1.1\r\nHost: t\r\n\r\n' + 'HEAD / HTTP/1.1\r\nHost: t\r\n\r\n' + get('/bytes/4'));
    const h1 = await c.readResponse({ head: true });
    const h2 = await c.readResponse({ head: true });
    expect(h1.headers.get('content-length')).toBe('1000');
    expect(h2.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(Number(h2.headers.get('content-length'))).toBeGreaterThan(100);
    // If any body bytes had been sent, this would not parse as the next response.
    expect([...(await c.readResponse()).body]).toEqual([0, 1, 2, 3]);
  });

  it('streams without Content-Length as chunked to HTTP/1.1 and close-delimited to HTTP/1.0', async () => {
    const handler: Handler = async (req, res) => {
      await res.write('one,');
      await res.write('');
      await res.write(Buffer.from('two,'));
      res.end('three');
    };
    const { port } = await startServer({ handler });
    const c = await Client.connect(port);
    c.send(get('/'));
    const r = await c.readResponse();
    expect(r.headers.get('transfer-encoding')).toBe('chunked');
    expect(r.body.toString()).toBe('one,two,three');
    const d = await Client.connect(port);
    d.send('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    const r0 = await d.readResponse();
    expect(r0.headers.get('transfer-encoding')).toBeUndefined();
    expect(r0.headers.get('connection')).toBe('close');
    expect(r0.body.toString()).toBe('one,two,three');
  });

  it('204 carries no body and no Content-Length', async () => {
    const handler: Handler = (req, res) => {
      res.status = 204;
      res.end();
    };
    const { port } = await startServer({ handler });
    const c = await Client.connect(port);
    c.send(get('/') + get('/'));
    const r = await c.readResponse();
    expect(r.status).toBe(204);
    expect(r.headers.has('content-length')).toBe(false);
    expect((await c.readResponse()).status).toBe(204);
  });

  it('an async handler that forgets end() still completes its response', async () => {
    const handler: Handler = async (req, res) => {
      res.setHeader('Content-Type', 'text/plain');
      await res.write('partial');
    };
    const { port } = await startServer({ handler });
    const c = await Client.connect(port);
    c.send(get('/') + get('/'));
    expect((await c.readResponse()).body.toString()).toBe('partial');
    expect((await c.readResponse()).body.toString()).toBe('partial');
  });

  it('exposes method, path, query, version, headers and peer address to the handler', async () => {
    let seen: Record<string, unknown> = {};
    const handler: Handler = (req, res) => {
      seen = { method: req.method, target: req.target, path: req.path, query: req.query, version: req.version, ua: req.headers.get('user-agent'), remote: req.remoteAddress };
      res.end();
    };
    const { port } = await startServer({ handler });
    const c = await Client.connect(port);
    c.send('OPTIONS /a%20b/c?x=1&y=2 HTTP/1.1\r\nHost: t\r\nUser-Agent: test\r\n\r\n');
    await c.readResponse();
    expect(seen).toEqual({ method: 'OPTIONS', target: '/a%20b/c?x=1&y=2', path: '/a%20b/c', query: 'x=1&y=2', version: '1.1', ua: 'test', remote: '127.0.0.1' });
  });
});

describe('netstack routes over HttpServer', () => {
  it('/bytes/N: exactly N bytes of the i mod 256 pattern (sha256)', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    for (const n of [0, 1, 255, 256, 65535, 65536, 65537, 3 * 65536 + 7, 10_000_000]) {
      c.send(get(`/bytes/${n}`));
      const h = createHash('sha256');
      const r = await c.readResponse({ sink: (b) => h.update(b) });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/octet-stream');
      expect(r.headers.get('content-length')).toBe(String(n));
      expect(r.bodyLength).toBe(n);
      expect(h.digest('hex'), `N=${n}`).toBe(patternHash(n));
    }
  });

  it('/bytes/N validates N: digits only, at most 2^40', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    for (const bad of ['abc', '-1', '1.5', '', '1e3', '0x10', '1099511627777', '99999999999999999999', '%31']) {
      c.send(get(`/bytes/${bad}`));
      expect((await c.readResponse()).status, bad).toBe(400);
    }
    c.send(`HEAD /bytes/${2 ** 40} HTTP/1.1\r\nHost: t\r\n\r\n`);
    const r = await c.readResponse({ head: true });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe(String(2 ** 40));
  });

  it('POST /echo returns a Content-Length body byte for byte', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    const body = randomBytes(1_000_003, 42);
    c.send(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: x/y\r\nContent-Length: ${body.length}\r\n\r\n`);
    c.send(body);
    const r = await c.readResponse();
    expect(r.headers.get('content-length')).toBe(String(body.length));
    expect(r.headers.get('content-type')).toBe('x/y');
    expect(r.body.equals(body)).toBe(true);
  });

  it('POST /echo with a chunked request answers chunked', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    const body = randomBytes(300_000, 7);
    c.send('POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n');
    for (let at = 0; at < body.length; at += 70_000) {
      const piece = body.subarray(at, at + 70_000);
      c.send(`${piece.length.toString(16)};ext=1\r\n`);
      c.send(piece);
      c.send('\r\n');
    }
    c.send('0\r\nX-Trailer: t\r\n\r\n');
    const r = await c.readResponse();
    expect(r.headers.get('transfer-encoding')).toBe('chunked');
    expect(r.body.equals(body)).toBe(true);
  });

  it('POST /echo streams 64 MiB both ways', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    const n = 64 * 1024 * 1024;
    const block = randomBytes(1024 * 1024, 99);
    const sent = createHash('sha256');
    c.send(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${n}\r\n\r\n`);
    const writer = (async () => {
      for (let i = 0; i < 64; i++) {
        sent.update(block);
        if (!c.send(block)) await new Promise((r) => c.socket.once('drain', r));
      }
    })();
    const got = createHash('sha256');
    const r = await c.readResponse({ sink: (b) => got.update(b) });
    await writer;
    expect(r.bodyLength).toBe(n);
    expect(got.digest('hex')).toBe(sent.digest('hex'));
  });

  it('Expect: 100-continue gets 100 Continue before the body is sent', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    const interim = await c.readResponse();
    expect(interim.status).toBe(100);
    c.send('hello');
    const r = await c.readResponse();
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('hello');
  });

  it('404 for unknown paths; a small unread body is dropped and the connection kept', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send('POST /nope HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789' + get('/bytes/1'));
    expect((await c.readResponse()).status).toBe(404);
    expect((await c.readResponse()).status).toBe(200);
    expect(c.ended).toBe(false);
  });

  it('405 with Allow for the wrong method', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send(get('/echo'));
    const r1 = await c.readResponse();
    expect(r1.status).toBe(405);
    expect(r1.headers.get('allow')).toBe('POST');
    c.send('DELETE /metrics HTTP/1.1\r\nHost: t\r\n\r\n');
    const r2 = await c.readResponse();
    expect(r2.status).toBe(405);
    expect(r2.headers.get('allow')).toBe('GET, HEAD');
  });

  it('GET / is an HTML status page with address, uptime, connections and counters', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send(get('/'));
    const r = await c.readResponse();
    const html = r.body.toString();
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('10.0.0.2');
    expect(html).toMatch(/up 1h 2m \d+s/);
    // Live connections are rows; TIME-WAIT is counted in the summary and linked, not listed.
    expect(html).not.toContain('<td>TIME-WAIT</td>');
    expect(html).toContain('3 connections (2 ESTABLISHED, 1 TIME-WAIT)');
    expect(html).toContain('… and 1 more: <a href="/connections">/connections</a>');
    expect(html).toContain('<td>10.0.0.1:40001</td>');
    expect(html).toContain('<td>tcpRetransmits</td><td>2</td>');
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
  });

  it('GET /connections is the counts and the first page of view.connections(), for an allowed address', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send(get('/connections'));
    const r = await c.readResponse();
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(JSON.parse(r.body.toString())).toEqual({
      total: 3,
      states: { ESTABLISHED: 2, 'TIME-WAIT': 1 },
      offset: 0,
      limit: CONNECTIONS_PAGE,
      connections: view.connections(),
    });
  });

  it('GET /connections?limit=&offset= asks the view for that page only; bad values get 400', async () => {
    const asked: Array<[number | undefined, number | undefined]> = [];
    const big: StackView = {
      ...view,
      connections: (limit, offset) => {
        asked.push([limit, offset]);
        return view.connections().slice(offset ?? 0, (offset ?? 0) + (limit ?? Infinity));
      },
      connectionStates: () => ({ ESTABLISHED: 99_998, 'TIME-WAIT': 2 }),
    };
    const { port } = await startServer({ handler: createNetstackApp(big, { canSeeDetails: () => true }) });
    const c = await Client.connect(port);
    c.send(get('/connections?limit=1&offset=2'));
    const page = JSON.parse((await c.readResponse()).body.toString());
    expect(page).toEqual({ total: 100_000, states: { ESTABLISHED: 99_998, 'TIME-WAIT': 2 }, offset: 2, limit: 1, connections: [view.connections()[2]] });
    expect(asked).toEqual([[1, 2]]);
    for (const q of ['limit=0', 'limit=1001', 'limit=-1', 'offset=x', 'limit=1e3', 'offset=-5']) {
      c.send(get(`/connections?${q}`));
      const r = await c.readResponse();
      expect(r.status, q).toBe(400);
    }
    expect(asked).toHaveLength(1);
  });

  it('a client the predicate does not admit sees counts only: no 4-tuples, no sequence numbers', async () => {
    const seen: string[] = [];
    const { port } = await startServer({
      canSeeDetails: (addr) => {
        seen.push(addr);
        return false;
      },
    });
    const c = await Client.connect(port);
    c.send(get('/connections'));
    const r = await c.readResponse();
    expect(JSON.parse(r.body.toString())).toEqual({ total: 3, states: { ESTABLISHED: 2, 'TIME-WAIT': 1 }, note: DETAILS_WITHHELD });
    c.send(get('/'));
    const html = (await c.readResponse()).body.toString();
    expect(html).toContain('3 connections (2 ESTABLISHED, 1 TIME-WAIT)');
    expect(html).not.toContain('10.0.0.1:40001');
    expect(html).not.toContain('<td>ESTABLISHED</td>');
    expect(seen.length).toBe(2);
    expect(seen[0]).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
  });

  it('GET /metrics is Prometheus text format 0.0.4', async () => {
    const { port } = await startServer();
    const c = await Client.connect(port);
    c.send(get('/metrics'));
    const r = await c.readResponse();
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = r.body.toString();
    expect(text.endsWith('\n')).toBe(true);
    const declared = new Map<string, string>();
    const helped = new Set<string>();
    for (const line of text.trimEnd().split('\n')) {
      let m: RegExpExecArray | null;
      if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line))) helped.add(m[1]!);
      else if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line))) declared.set(m[1]!, m[2]!);
      else {
        m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"\})? (-?\d+(\.\d+)?(e[+-]?\d+)?|NaN|[+-]Inf)$/.exec(line);
        expect(m, `sample line ${JSON.stringify(line)}`).not.toBeNull();
        expect(declared.has(m![1]!), `TYPE before ${m![1]}`).toBe(true);
        expect(helped.has(m![1]!), `HELP before ${m![1]}`).toBe(true);
      }
    }
    expect(text).toContain('netstack_ip_in_total 10\n');
    expect(text).toContain('netstack_ip_out_total 7\n');
    expect(text).toContain('netstack_tcp_retransmits_total 2\n');
    expect(text).toContain('netstack_tcp_bad_checksum_total 1\n');
    expect(declared.get('netstack_ip_in_total')).toBe('counter');
    expect(declared.get('netstack_connections')).toBe('gauge');
    expect(text).toContain('netstack_connections{state="ESTABLISHED"} 2\n');
    expect(text).toContain('netstack_connections{state="TIME-WAIT"} 1\n');
  });
});

describe('static files (--root)', () => {
  let dir = '';
  async function staticServer() {
    const base = mkdtempSync(join(tmpdir(), 'netstack-static-'));
    cleanups.push(() => rmSync(base, { recursive: true, force: true }));
    dir = join(base, 'www');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    mkdirSync(join(dir, 'empty'));
    writeFileSync(join(base, 'secret.txt'), 'SECRET');
    writeFileSync(join(dir, 'index.html'), '<h1>home</h1>');
    writeFileSync(join(dir, 'a.txt'), 'hello file');
    writeFileSync(join(dir, 'a b.css'), 'body{}');
    writeFileSync(join(dir, 'sub', 'index.html'), '<h1>sub</h1>');
    writeFileSync(join(dir, 'big.bin'), randomBytes(1_500_000, 3));
    symlinkSync(join(base, 'secret.txt'), join(dir, 'link-out'));
    symlinkSync(base, join(dir, 'dir-out'));
    symlinkSync(join(dir, 'a.txt'), join(dir, 'link-in'));
    const h = await startServer({ root: dir });
    return Client.connect(h.port);
  }

  const fetch = async (c: Client, path: string, method = 'GET') => {
    c.send(`${method} ${path} HTTP/1.1\r\nHost: t\r\n\r\n`);
    return c.readResponse({ head: method === 'HEAD' });
  };

  it('serves files with a content type, and index.html for directories', async () => {
    const c = await staticServer();
    const a = await fetch(c, '/a.txt');
    expect(a.status).toBe(200);
    expect(a.body.toString()).toBe('hello file');
    expect(a.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const css = await fetch(c, '/a%20b.css');
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await fetch(c, '/sub/')).body.toString()).toBe('<h1>sub</h1>');
    const redirect = await fetch(c, '/sub');
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/sub/');
    // Never a protocol-relative Location (//host/...): that would be an open redirect.
    for (const path of ['//sub', '///sub', '/.//sub']) {
      const r = await fetch(c, path);
      expect(r.status, path).toBe(301);
      expect(r.headers.get('location'), path).toBe('/sub/');
    }
    expect((await fetch(c, '/link-in')).body.toString()).toBe('hello file');
    const big = await fetch(c, '/big.bin');
    expect(big.body.equals(randomBytes(1_500_000, 3))).toBe(true);
    const head = await fetch(c, '/a.txt', 'HEAD');
    expect(head.headers.get('content-length')).toBe('10');
  });

  it('the status page stays at /, other paths come from the root', async () => {
    const c = await staticServer();
    expect((await fetch(c, '/')).body.toString()).toContain('<h1>netstack</h1>');
    expect((await fetch(c, '/index.html')).body.toString()).toBe('<h1>home</h1>');
  });

  const escapes: Array<[string, number]> = [
    ['/../secret.txt', 403],
    ['/sub/../../secret.txt', 403],
    ['/%2e%2e/secret.txt', 403],
    ['/%2E%2E/secret.txt', 403],
    ['/sub/%2e%2e%2f%2e%2e%2fsecret.txt', 403],
    ['/..%2fsecret.txt', 403],
    ['/..%5csecret.txt', 403],
    ['/a.txt%00.html', 403],
    ['/link-out', 403],
    ['/dir-out/secret.txt', 403],
    ['/missing.txt', 404],
    ['/empty/', 404],
    ['/%zz', 400],
  ];
  for (const [path, status] of escapes) {
    it(`${path} → ${status}`, async () => {
      const c = await staticServer();
      const r = await fetch(c, path);
      expect(r.status).toBe(status);
      expect(r.body.toString()).not.toContain('SECRET');
    });
  }

  it('405 with Allow for non-GET methods on files', async () => {
    const c = await staticServer();
    const r = await fetch(c, '/a.txt', 'PUT');
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('HttpServer: backpressure', () => {
  it('a client that does not read a big /bytes response does not make the server buffer it', async () => {
    const { port, serverSockets } = await startServer();
    const c = await Client.connect(port);
    c.socket.pause();
    const n = 256 * 1024 * 1024;
    c.send(get(`/bytes/${n}`));
    await until(() => serverSockets.length === 1, 'the server socket');
    const s = serverSockets[0]!;
    // Sample until the kernel buffers are full and nothing moves any more.
    let maxQueued = 0;
    let stable = 0;
    let last = -1;
    for (let i = 0; i < 300 && stable < 10; i++) {
      await sleep(10);
      maxQueued = Math.max(maxQueued, s.writableLength);
      stable = s.bytesWritten === last ? stable + 1 : 0;
      last = s.bytesWritten;
    }
    expect(stable).toBe(10);
    // One 64 KiB pattern chunk on top of the 16 KiB high-water mark, plus the head.
    expect(maxQueued).toBeLessThanOrEqual(96 * 1024);
    expect(s.bytesWritten).toBeLessThan(n / 4);
    // Now read it all: every byte arrives, in order.
    const h = createHash('sha256');
    c.socket.resume();
    const r = await c.readResponse({ sink: (b) => h.update(b) });
    expect(r.bodyLength).toBe(n);
    expect(h.digest('hex')).toBe(patternHash(n));
  });

  it('a client that pipelines requests without reading is paused, not buffered', async () => {
    const { port, serverSockets } = await startServer();
    const c = await Client.connect(port);
    c.socket.pause();
    const one = get('/bytes/65536');
    const batch = one.repeat(Math.ceil((1024 * 1024) / one.length));
    let sent = 0;
    for (let i = 0; i < 40; i++) {
      c.send(batch);
      sent += batch.length;
    }
    await until(() => serverSockets.length === 1, 'the server socket');
    const s = serverSockets[0]!;
    let stable = 0;
    let last = -1;
    for (let i = 0; i < 300 && stable < 10; i++) {
      await sleep(10);
      stable = s.bytesRead === last ? stable + 1 : 0;
      last = s.bytesRead;
    }
    expect(stable).toBe(10);
    expect(s.isPaused()).toBe(true);
    expect(s.bytesRead).toBeLessThan(sent / 2);
  });
});
