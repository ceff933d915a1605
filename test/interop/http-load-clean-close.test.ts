/**
 * netstack's HTTP server on its own TCP under load and bad input, over a real TUN device, with
 * the Linux kernel in a fresh network namespace as the client: big bodies arrive intact, many
 * clients at once are served, and every connection ends with FIN, never RST.
 *
 *   curl          GET / (HTML), HTTP/1.0 and 1.1, connection reuse, HEAD, a 10 MB POST
 *                 echoed back, 100 MB of /bytes (SHA-256 on both sides)
 *   200 clients   × 10 keep-alive requests at once (Python asyncio, kernel sockets); after
 *                 it, nothing is left on either side but TIME-WAIT
 *   raw sockets   a request one byte per segment, three pipelined requests in one write,
 *                 every malformed request listed below (its status, then FIN — never RST),
 *                 a client that never finishes its header section (408, then FIN)
 *
 * The kernel's side is watched from ours too: a tap on the link sees every data segment
 * the kernel sent, and the state transitions of each of our connections are recorded,
 * so "closed cleanly" means: we went ESTABLISHED → FIN-WAIT-1 → … → TIME-WAIT and no
 * RST crossed the link either way. Timing is never asserted; every wait is bounded.
 */
import { createCipheriv } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createNetstackApp } from '../../src/http/routes.js';
import { HttpServer, type HttpServerOptions } from '../../src/http/server.js';
import { parseIpv4 } from '../../src/ip/addr.js';
import { PROTO_TCP, parseIpv4 as parseIpv4Packet } from '../../src/ip/ipv4.js';
import type { Link } from '../../src/link/link.js';
import { Stack } from '../../src/stack.js';
import { RST, parseTcp } from '../../src/tcp/segment.js';
import { kernelPython, kernelSockets, waitFor } from '../helpers/kernel-peer.js';
import type { NetnsTun } from '../helpers/netns.js';
import { createNetnsTun, describeInterop } from '../helpers/netns.js';
import { curl, curlHash, patternHash, sha256 } from '../helpers/http.js';

// ───────────────────────── expected bytes ─────────────────────────

/** n reproducible pseudo-random bytes (AES-128-CTR keystream of a fixed key: a seeded generator). */
function seededBytes(n: number, seed: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(seed);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
}

// ───────────────────────── the server under test ─────────────────────────

interface HttpFixture {
  t: NetnsTun;
  stack: Stack;
  http: HttpServer;
  /** `http://<stack address>` */
  base: string;
  /** The states each of our connections went through, keyed by the client's (kernel's) port. */
  states: Map<number, string[]>;
  /** Payload sizes of the data segments the kernel sent to port 80, keyed by the client's port. */
  dataSegments: Map<number, number[]>;
  /** Segments with RST that crossed the link, per direction (seen by the tap). */
  rsts: { fromKernel: number; fromUs: number };
  close(): Promise<void>;
}

/** Shows every packet crossing `link`, in both directions, before it goes on. */
function tapLink(link: Link, watch: (packet: Uint8Array, fromKernel: boolean) => void): Link {
  return {
    get mtu() {
      return link.mtu;
    },
    onReceive: (handler) =>
      link.onReceive((packets) => {
        for (const p of packets) watch(p, true);
        handler(packets);
      }),
    send: (packets) => {
      for (const p of packets) watch(p, false);
      link.send(packets);
    },
    close: () => link.close(),
  };
}

/**
 * Our stack on a fresh namespace's TUN, serving `netstack up`'s app on port 80 (wired as
 * src/cli/up.ts wires it). The caller closes it (see `useHttp` for one per test).
 */
async function startHttp(opts: Partial<HttpServerOptions> = {}): Promise<HttpFixture> {
  const t = await createNetnsTun();
  const dataSegments = new Map<number, number[]>();
  const rsts = { fromKernel: 0, fromUs: 0 };
  const link = tapLink(t.link, (packet, fromKernel) => {
    const ip = parseIpv4Packet(packet);
    if ('error' in ip || ip.header.protocol !== PROTO_TCP) return;
    const seg = parseTcp(ip.payload, ip.header.src, ip.header.dst, false);
    if ('error' in seg) return;
    if (seg.flags & RST) {
      if (fromKernel) rsts.fromKernel++;
      else rsts.fromUs++;
    }
    if (fromKernel && seg.dstPort === 80 && seg.payload.length > 0) {
      let sizes = dataSegments.get(seg.srcPort);
      if (!sizes) dataSegments.set(seg.srcPort, (sizes = []));
      sizes.push(seg.payload.length);
    }
  });
  const stack = new Stack({ link, addr: parseIpv4(t.stackAddr)! });
  const states = new Map<number, string[]>();
  stack.onTransition((e) => {
    let list = states.get(e.conn.remotePort);
    if (!list) states.set(e.conn.remotePort, (list = []));
    list.push(e.to);
  });
  const app = createNetstackApp({
    addr: t.stackAddr,
    startedAt: Date.now(),
    stats: () => stack.stats(),
    connections: () => stack.connections(),
  });
  const http: HttpServer = new HttpServer({ handler: app, clock: stack.clock, ...opts });
  // allowHalfOpen, as `netstack up` does: a client's FIN must not cut a response short.
  const server = stack.createServer({ allowHalfOpen: true }, (socket) => http.handleConnection(socket));
  server.listen(80);
  return {
    t,
    stack,
    http,
    base: `http://${t.stackAddr}`,
    states,
    dataSegments,
    rsts,
    close: async () => {
      http.close();
      server.close();
      stack.close();
      await t.cleanup();
    },
  };
}

/** A server for the current test only. */
async function useHttp(opts: Partial<HttpServerOptions> = {}): Promise<HttpFixture> {
  const fx = await startHttp(opts);
  onTestFinished(() => fx.close());
  return fx;
}

const stat = (fx: HttpFixture, name: string): number => fx.stack.stats()[name] ?? 0;

/** Our connection with this client port ends in TIME-WAIT, having sent the first FIN (no RST anywhere). */
async function expectClosedByOurFin(fx: HttpFixture, clientPort: number): Promise<void> {
  const current = () => fx.stack.connections().find((c) => c.remote.endsWith(`:${clientPort}`))?.state;
  expect(await waitFor(() => current() === 'TIME-WAIT', 10_000), `state ${current()}`).toBe(true);
  const path = fx.states.get(clientPort) ?? [];
  // FIN-WAIT-1 after ESTABLISHED: our FIN went first (RFC 9293 §3.6 case 1); never CLOSED on the way.
  expect(path.slice(0, 3)).toEqual(['SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1']);
  expect(path).not.toContain('CLOSED');
  expect(path).not.toContain('CLOSE-WAIT');
  expect(fx.rsts).toEqual({ fromKernel: 0, fromUs: 0 });
}

// ───────────────────────── clients in the namespace ─────────────────────────

/** A Python program with `cfg` (a JSON value) defined before it: JSON string escapes are valid Python. */
function withConfig(cfg: unknown, program: string): string {
  return `import json\ncfg = json.loads(${JSON.stringify(JSON.stringify(cfg))})\n${program}`;
}

/**
 * One kernel socket: send `parts` with one send() each (optionally TCP_NODELAY and a pause
 * between them) while reading until the server's FIN; stop sending once that FIN is
 * seen; then close. A RST shows up as `err` ("ECONNRESET").
 */
const RAW_CLIENT_PY = String.raw`
import base64, errno, socket, threading, time
s = socket.create_connection((cfg['host'], 80), timeout=cfg['timeoutS'])
if cfg['nodelay']:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
parts = [base64.b64decode(p) for p in cfg['parts']]
eof_seen = threading.Event()
progress = {'sent': 0, 'error': None}

def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__

def sender():
    try:
        for p in parts:
            if eof_seen.is_set():
                break
            s.sendall(p)
            progress['sent'] += len(p)
            if cfg['gapS']:
                time.sleep(cfg['gapS'])
    except OSError as e:
        progress['error'] = errname(e)

t = threading.Thread(target=sender, daemon=True)
t.start()
data, eof, err = b'', False, None
try:
    while True:
        d = s.recv(65536)
        if not d:
            eof = True
            break
        data += d
except OSError as e:
    err = errname(e)
eof_seen.set()
t.join(cfg['timeoutS'])
port = s.getsockname()[1]
s.close()
print(json.dumps({'port': port, 'data': base64.b64encode(data).decode(), 'eof': eof, 'err': err,
                  'sent': progress['sent'], 'sendError': progress['error']}))
`;

interface RawResult {
  /** The kernel socket's port. */
  port: number;
  /** Everything the server sent, as latin1 text. */
  text: string;
  /** The server's FIN arrived. */
  eof: boolean;
  /** The receive side's error (e.g. "ECONNRESET" for a RST), or null. */
  err: string | null;
  /** Bytes the client managed to send. */
  sent: number;
  sendError: string | null;
}

async function rawClient(
  fx: HttpFixture,
  parts: Array<string | Uint8Array>,
  opts: { gapS?: number; nodelay?: boolean; timeoutS?: number } = {},
): Promise<RawResult> {
  const cfg = {
    host: fx.t.stackAddr,
    parts: parts.map((p) => Buffer.from(typeof p === 'string' ? Buffer.from(p, 'latin1') : p).toString('base64')),
    gapS: opts.gapS ?? 0,
    nodelay: opts.nodelay ?? false,
    timeoutS: opts.timeoutS ?? 15,
  };
  const r = await kernelPython(fx.t, withConfig(cfg, RAW_CLIENT_PY), (cfg.timeoutS * 2 + 10) * 1000);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as Omit<RawResult, 'text'> & { data: string };
  return { ...out, text: Buffer.from(out.data, 'base64').toString('latin1') };
}

interface ParsedResponse {
  status: number;
  /** Field names lower-cased. */
  headers: Map<string, string>;
  body: string;
}

/** Split a byte stream of Content-Length-framed responses; anything left over is an error. */
function parseResponses(text: string): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) throw new Error(`incomplete response head at byte ${at}: ${JSON.stringify(text.slice(at, at + 80))}`);
    const [statusLine, ...lines] = text.slice(at, end).split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine!);
    if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get('content-length'));
    if (!Number.isInteger(length) || end + 4 + length > text.length) throw new Error(`bad or short body at byte ${at}`);
    out.push({ status: Number(m[1]), headers, body: text.slice(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
  return out;
}

const patternText = (n: number): string => Buffer.from(Array.from({ length: n }, (_, i) => i % 256)).toString('latin1');

// ───────────────────────── the tests ─────────────────────────

describeInterop('HTTP over netstack TCP with kernel clients: big bodies, 200 clients, bad requests, every close clean', () => {
  describe('curl', () => {
    it('GET / over HTTP/1.1 and HTTP/1.0 (-0): 200, an HTML page framed by Content-Length', async () => {
      const fx = await useHttp();
      for (const [flag, version] of [['--http1.1', '1.1'], ['-0', '1.0']] as const) {
        const r = await curl(fx.t, ['-v', '-i', flag, `${fx.base}/`]);
        expect(r.code, r.stderr).toBe(0);
        // curl -v shows the request line it sent.
        expect(r.stderr).toContain(`> GET / HTTP/${version}\r\n`);
        const [res] = parseResponses(r.stdout);
        expect(res!.status).toBe(200);
        expect(res!.headers.get('content-type')).toBe('text/html; charset=utf-8');
        expect(res!.body).toMatch(/^<!DOCTYPE html>\n/);
        expect(res!.body).toContain(`<b>${fx.t.stackAddr}</b>`);
        // An HTTP/1.0 request without keep-alive is the last on its connection (RFC 9112 §9.3).
        if (version === '1.0') expect(res!.headers.get('connection')).toBe('close');
        else expect(res!.headers.has('connection')).toBe(false);
      }
      expect(fx.http.stats['requests']).toBe(2);
    });

    it('`curl url url` reuses one connection (HTTP/1.1, and HTTP/1.0 with keep-alive); plain HTTP/1.0 does not', async () => {
      const fx = await useHttp();
      const twice = async (extra: string[]): Promise<string[]> => {
        const before = stat(fx, 'tcp.passive-open');
        const r = await curl(fx.t, [...extra, '-o', '/dev/null', '-o', '/dev/null', '-w', '%{http_code} %{num_connects}\\n', `${fx.base}/`, `${fx.base}/bytes/10`]);
        expect(r.code, r.stderr).toBe(0);
        const lines = r.stdout.trim().split('\n');
        // Our side agrees with curl: one SYN accepted per connection curl opened.
        expect(stat(fx, 'tcp.passive-open') - before).toBe(lines.filter((l) => l.endsWith(' 1')).length);
        return lines;
      };
      expect(await twice([])).toEqual(['200 1', '200 0']);
      expect(await twice(['-0', '-H', 'Connection: keep-alive'])).toEqual(['200 1', '200 0']);
      expect(await twice(['-0'])).toEqual(['200 1', '200 1']);
    });

    it('HEAD (curl -I): the head with Content-Length, no body; the connection stays usable', async () => {
      const fx = await useHttp();
      // --next reuses the connection: a body sent after the HEAD response would corrupt the GET.
      const r = await curl(fx.t, ['-I', `${fx.base}/bytes/12345`, '--next', '-sS', '-o', '/dev/null', '-w', 'GET %{http_code} %{num_connects} %{size_download}\\n', `${fx.base}/bytes/777`]);
      expect(r.code, r.stderr).toBe(0);
      const [head, after] = r.stdout.split('\r\n\r\n');
      expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(`${head}\r\n`).toContain('\r\nContent-Length: 12345\r\n');
      expect(`${head}\r\n`).toContain('\r\nContent-Type: application/octet-stream\r\n');
      expect(after).toBe('GET 200 0 777\n');
      expect(fx.http.stats['requests']).toBe(2);
      expect(stat(fx, 'tcp.passive-open')).toBe(1);
      // HEAD of the HTML page: its Content-Length, still no body.
      const page = await curl(fx.t, ['-I', `${fx.base}/`]);
      expect(page.code, page.stderr).toBe(0);
      expect(page.stdout).toMatch(/\r\nContent-Type: text\/html; charset=utf-8\r\n/);
      expect(page.stdout).toMatch(/\r\nContent-Length: [1-9]\d*\r\n/);
      expect(page.stdout.endsWith('\r\n\r\n')).toBe(true);
    });

    it('POST --data-binary @file of 10 MB to /echo comes back with the same SHA-256', async () => {
      const fx = await useHttp();
      const dir = mkdtempSync(join(tmpdir(), 'netstack-http-load-'));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      const body = seededBytes(10 * 1024 * 1024, 5);
      const file = join(dir, 'body.bin');
      writeFileSync(file, body);
      expect(await curlHash(fx.t, ['--data-binary', `@${file}`, '-H', 'Content-Type: application/octet-stream', `${fx.base}/echo`])).toBe(sha256(body));
      expect(fx.http.stats['responses_2xx']).toBe(1);
    });

    it('/bytes/104857600: 100 MB, SHA-256 equal to the pattern computed here', async () => {
      const fx = await useHttp();
      const n = 104_857_600;
      expect(await curlHash(fx.t, [`${fx.base}/bytes/${n}`])).toBe(patternHash(n));
    });
  });

  it('200 concurrent clients × 10 keep-alive requests: all succeed, then only TIME-WAIT is left on both sides', async () => {
    const fx = await useHttp();
    const clients = 200;
    const requests = 10;
    // One asyncio program, 200 kernel sockets. Requests alternate GET /bytes/n and POST /echo
    // of n seeded random bytes; every body is compared. Even clients send "Connection: close"
    // on their last request (our FIN goes first); odd clients close after their last response
    // (the kernel's FIN goes first). Each side keeps TIME-WAIT for the connections it closed first.
    const program = String.raw`
import asyncio, random
PATTERN = bytes(range(256)) * 128

async def read_response(reader):
    head = await reader.readuntil(b'\r\n\r\n')
    lines = head[:-4].decode('latin1').split('\r\n')
    status = int(lines[0].split(' ')[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(':')
        fields[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(fields['content-length']))
    return status, fields, body

async def client(i):
    rng = random.Random(i)
    reader, writer = await asyncio.open_connection(cfg['host'], 80)
    port = writer.get_extra_info('sockname')[1]
    server_closes = i % 2 == 0
    for r in range(cfg['requests']):
        close = server_closes and r == cfg['requests'] - 1
        extra = b'Connection: close\r\n' if close else b''
        n = rng.randrange(0, len(PATTERN))
        if r % 2 == 0:
            expected = PATTERN[:n]
            writer.write(b'GET /bytes/%d HTTP/1.1\r\nHost: x\r\n%s\r\n' % (n, extra))
        else:
            expected = rng.randbytes(n)
            writer.write(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n' % (n, extra) + expected)
        await writer.drain()
        status, fields, body = await read_response(reader)
        if status != 200 or body != expected:
            raise Exception('client %d request %d: status %d, %d bytes, expected %d' % (i, r, status, len(body), n))
        if (fields.get('connection') == 'close') != close:
            raise Exception('client %d request %d: Connection: %s' % (i, r, fields.get('connection')))
    if server_closes and await reader.read(1) != b'':
        raise Exception('client %d: bytes after the last response' % i)
    writer.close()
    await writer.wait_closed()
    return port, server_closes

async def main():
    jobs = [client(i) for i in range(cfg['clients'])]
    results = await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), cfg['timeoutS'])
    ok = [r for r in results if not isinstance(r, BaseException)]
    errors = ['%s: %s' % (type(r).__name__, r) for r in results if isinstance(r, BaseException)]
    print(json.dumps({'ok': len(ok), 'errors': errors[:5], 'errorCount': len(errors),
                      'serverClosed': [p for p, s in ok if s], 'clientClosed': [p for p, s in ok if not s]}))

asyncio.run(main())
`;
    const r = await kernelPython(fx.t, withConfig({ host: fx.t.stackAddr, clients, requests, timeoutS: 45 }, program), 55_000);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { ok: number; errors: string[]; errorCount: number; serverClosed: number[]; clientClosed: number[] };
    expect(out.errors).toEqual([]);
    expect(out.ok).toBe(clients);
    expect(fx.http.stats['connections']).toBe(clients);
    expect(fx.http.stats['requests']).toBe(clients * requests);
    expect(fx.http.stats['responses_2xx']).toBe(clients * requests);
    expect(stat(fx, 'tcp.passive-open')).toBe(clients);

    // Ours: TIME-WAIT for the connections whose last request said "close" (we sent the first
    // FIN); the others are gone (the kernel's FIN went first: CLOSE-WAIT, LAST-ACK, CLOSED).
    const portOf = (endpoint: string) => Number(endpoint.slice(endpoint.lastIndexOf(':') + 1));
    const expected = new Map<number, string>([
      ...out.serverClosed.map((p) => [p, 'TIME-WAIT'] as const),
      ...out.clientClosed.map((p) => [p, 'gone'] as const),
    ]);
    const unexpected = () => {
      const now = new Map(fx.stack.connections().map((c) => [portOf(c.remote), c.state]));
      const wrong: string[] = [];
      for (const [port, state] of now) if (!expected.has(port)) wrong.push(`${port}: unknown client, ${state}`);
      for (const [port, want] of expected) {
        const got = now.get(port) ?? 'gone';
        if (got !== want) wrong.push(`${port}: ${got}, expected ${want}, via ${(fx.states.get(port) ?? []).join(' > ')}`);
      }
      return wrong;
    };
    await waitFor(() => unexpected().length === 0, 15_000);
    expect(unexpected()).toEqual([]);

    // The kernel's (ss -tan in the namespace): TIME-WAIT exactly for the clients that closed first.
    // (Our last ACK may still be on its way to a LAST-ACK socket: wait for it, bounded.)
    let theirs = await kernelSockets(fx.t);
    await waitFor(async () => (theirs = await kernelSockets(fx.t)).every((s) => s.state === 'TIME-WAIT'), 15_000);
    expect(theirs.filter((s) => s.state !== 'TIME-WAIT')).toEqual([]);
    const theirPorts = theirs.map((s) => portOf(s.local));
    expect(theirPorts.sort((a, b) => a - b)).toEqual([...out.clientClosed].sort((a, b) => a - b));
    expect(fx.rsts).toEqual({ fromKernel: 0, fromUs: 0 });
  });

  describe('raw kernel sockets', () => {
    it('a request sent one byte per segment (TCP_NODELAY) is parsed and answered', async () => {
      const fx = await useHttp();
      const request = 'GET /bytes/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
      const r = await rawClient(fx, [...request], { nodelay: true, gapS: 0.005 });
      expect(r.err).toBeNull();
      expect(r.eof).toBe(true);
      const [res, ...rest] = parseResponses(r.text);
      expect(rest).toEqual([]);
      expect(res!.status).toBe(200);
      expect(res!.body).toBe(patternText(5));
      // What our tap saw on the wire: the request really came in tiny segments (the kernel
      // may merge a few when a pause runs long, so not every byte need be alone).
      const sizes = fx.dataSegments.get(r.port) ?? [];
      expect(sizes.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(request.length);
      expect(sizes.length).toBeGreaterThanOrEqual(Math.ceil(request.length / 2));
      await expectClosedByOurFin(fx, r.port);
    });

    it('three pipelined requests in one write get three responses, in order', async () => {
      const fx = await useHttp();
      const request =
        'GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world' +
        'GET /bytes/300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
      const r = await rawClient(fx, [request]);
      expect(r.err).toBeNull();
      expect(r.eof).toBe(true);
      // One write, one segment: all three requests reached the server together.
      expect(fx.dataSegments.get(r.port)).toEqual([request.length]);
      const responses = parseResponses(r.text);
      expect(responses.map((x) => [x.status, x.body])).toEqual([
        [200, patternText(3)],
        [200, 'hello world'],
        [200, patternText(300)],
      ]);
      expect(responses.map((x) => x.headers.get('connection'))).toEqual([undefined, undefined, 'close']);
      await expectClosedByOurFin(fx, r.port);
    });

    describe('malformed requests: the right status, Connection: close, then FIN (not RST)', () => {
      let fx: HttpFixture;
      beforeAll(async () => {
        fx = await startHttp();
      });
      afterAll(async () => {
        await fx?.close();
      });

      const fillerFields = Array.from({ length: 40 }, (_, i) => `X-Filler-${i}: ${'v'.repeat(500)}\r\n`).join('');
      const cases: Array<{ what: string; request: string; status: number; reason: string }> = [
        { what: 'malformed request line', request: 'GET /no-version\r\nHost: x\r\n\r\n', status: 400, reason: 'bad-request-line' },
        { what: 'URI too long (10 000 bytes)', request: `GET /${'a'.repeat(10_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 414, reason: 'request-line-too-long' },
        { what: 'header section too large (20 kB)', request: `GET / HTTP/1.1\r\nHost: x\r\n${fillerFields}\r\n`, status: 431, reason: 'header-section-too-large' },
        {
          // '/' accepts 64 KiB of body at most; part of the body follows, and is read and dropped.
          what: 'body too large for the route (Content-Length 10 GB)',
          request: `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n${'b'.repeat(8192)}`,
          status: 413,
          reason: 'body-too-large',
        },
        { what: 'unknown transfer coding', request: 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', status: 501, reason: 'unsupported-transfer-coding' },
        { what: 'unsupported version', request: 'GET / HTTP/2.0\r\nHost: x\r\n\r\n', status: 505, reason: 'unsupported-version' },
        {
          what: 'Content-Length with Transfer-Encoding',
          request: 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
          status: 400,
          reason: 'content-length-and-transfer-encoding',
        },
        { what: 'conflicting Content-Length', request: 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', status: 400, reason: 'conflicting-content-length' },
        { what: 'obs-fold', request: 'GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n', status: 400, reason: 'obs-fold' },
        { what: 'bare CR', request: 'GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\rb\r\n\r\n', status: 400, reason: 'bare-cr' },
      ];

      it.each(cases)('$what → $status', async ({ request, status, reason }) => {
        const r = await rawClient(fx, [request]);
        expect(r.err).toBeNull();
        expect(r.eof).toBe(true);
        expect(r.sendError).toBeNull();
        expect(r.sent).toBe(request.length);
        const [res, ...rest] = parseResponses(r.text);
        expect(rest).toEqual([]);
        expect(res!.status).toBe(status);
        expect(res!.headers.get('connection')).toBe('close');
        expect(res!.body).toContain(reason);
        await expectClosedByOurFin(fx, r.port);
      });
    });

    it('a client that never finishes its header section gets 408 and FIN', async () => {
      const fx = await useHttp({ headersTimeoutMs: 300 });
      // A header that never ends, one byte every 20 ms for at most 16 s: progress on the
      // head must not extend its deadline. The client stops once the server's FIN arrives.
      const head = `GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ${'z'.repeat(800)}`;
      const r = await rawClient(fx, [...head], { nodelay: true, gapS: 0.02, timeoutS: 20 });
      expect(r.err).toBeNull();
      expect(r.eof).toBe(true);
      expect(r.sent).toBeLessThan(head.length);
      const [res, ...rest] = parseResponses(r.text);
      expect(rest).toEqual([]);
      expect(res!.status).toBe(408);
      expect(res!.headers.get('connection')).toBe('close');
      expect(fx.http.stats['headers_timeout']).toBe(1);
      await expectClosedByOurFin(fx, r.port);
    });
  });
});
