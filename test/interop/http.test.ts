/**
 * The HTTP server on netstack's own TCP, with the Linux kernel as the client: curl (and
 * a tiny Python raw-socket client for exact bytes) run inside a fresh network namespace
 * and talk to our stack over a real TUN device. Every byte of every response went
 * through src/ip, src/tcp and src/http.
 *
 * Bodies are checked by SHA-256 on both sides. Timing is never asserted.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { allowNetworks } from '../../src/http/access.js';
import { createNetstackApp } from '../../src/http/routes.js';
import { HttpServer, type HttpServerOptions } from '../../src/http/server.js';
import { parseIpv4 } from '../../src/ip/addr.js';
import { Stack } from '../../src/stack.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import type { NetnsTun } from '../helpers/netns.js';
import { createNetnsTun, describeInterop } from '../helpers/netns.js';
import { curl, curlHash, patternHash, sha256 } from '../helpers/http.js';

/** Our stack on the namespace's TUN, serving `netstack up`'s app on port 80. */
async function startHttp(
  opts: Partial<HttpServerOptions> = {},
): Promise<{ t: NetnsTun; stack: Stack; http: HttpServer; base: string; sockets: TcpSocket[] }> {
  const t = await createNetnsTun();
  const stack = new Stack({ link: t.link, addr: parseIpv4(t.stackAddr)! });
  const startedAt = Date.now();
  const app = createNetstackApp(
    {
      addr: t.stackAddr,
      startedAt,
      stats: () => ({ ...stack.stats(), ...prefixed('http', http.stats) }),
      connections: () => stack.connections(),
    },
    // As netstack up: the host side of the link sees the connections' details.
    { canSeeDetails: allowNetworks([{ addr: parseIpv4(t.hostAddr)!, prefix: 32 }]) },
  );
  const http: HttpServer = new HttpServer({ handler: app, ...opts });
  const sockets: TcpSocket[] = [];
  const server = stack.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    http.handleConnection(socket);
  });
  server.listen(80);
  onTestFinished(() => {
    http.close();
    server.close();
    stack.close();
  });
  return { t, stack, http, base: `http://${t.stackAddr}`, sockets };
}

function prefixed(prefix: string, stats: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(stats).map(([k, v]) => [`${prefix}.${k}`, v]));
}

/**
 * Exact bytes over a kernel socket: send `request`, optionally half-close, read until the
 * server closes (or `timeoutS`). Returns what came back and whether it ended with FIN.
 */
async function rawExchange(t: NetnsTun, host: string, request: string, opts: { shutdown?: boolean; timeoutS?: number } = {}) {
  const program = `
import base64, json, socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=float(sys.argv[4]))
s.sendall(base64.b64decode(sys.argv[2]))
if sys.argv[3] == '1':
    s.shutdown(socket.SHUT_WR)
data, eof, err = b'', False, None
try:
    while True:
        d = s.recv(65536)
        if not d:
            eof = True
            break
        data += d
except Exception as e:
    err = type(e).__name__
print(json.dumps({'data': base64.b64encode(data).decode(), 'eof': eof, 'err': err}))
`;
  const r = await t.exec(
    ['python3', '-c', program, host, Buffer.from(request, 'latin1').toString('base64'), opts.shutdown ? '1' : '0', String(opts.timeoutS ?? 10)],
    { timeoutMs: 30_000 },
  );
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as { data: string; eof: boolean; err: string | null };
  return { text: Buffer.from(out.data, 'base64').toString('latin1'), eof: out.eof, err: out.err };
}

describeInterop('HTTP server on netstack TCP (Linux kernel client)', () => {
  it('curl GET / returns the status page, with our address and the live connection', async () => {
    const { t, base } = await startHttp();
    const r = await curl(t, ['-i', `${base}/`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(r.stdout).toContain('Server: netstack');
    expect(r.stdout).toContain(`<b>${t.stackAddr}</b>`);
    // The page was rendered while curl's own connection was open.
    expect(r.stdout).toContain('<td>ESTABLISHED</td>');
    expect(r.stdout).toContain(`${t.hostAddr}:`);
  });

  it('curl /bytes/N: exact bytes of the pattern, several sizes', async () => {
    const { t, base } = await startHttp();
    for (const n of [0, 1, 1460, 65537, 10_000_000]) {
      expect(await curlHash(t, [`${base}/bytes/${n}`]), `N=${n}`).toBe(patternHash(n));
    }
  });

  it('curl POST /echo (Content-Length and chunked) returns the body byte for byte', async () => {
    const { t, base } = await startHttp();
    const dir = mkdtempSync(join(tmpdir(), 'netstack-http-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const body = randomBytes(5 * 1024 * 1024 + 3);
    const file = join(dir, 'body.bin');
    writeFileSync(file, body);
    expect(await curlHash(t, ['--data-binary', `@${file}`, '-H', 'Content-Type: application/octet-stream', `${base}/echo`])).toBe(sha256(body));
    expect(await curlHash(t, ['-T', file, '-X', 'POST', '-H', 'Transfer-Encoding: chunked', `${base}/echo`])).toBe(sha256(body));
  });

  it('curl reuses one kept-alive connection for several requests', async () => {
    const { t, base } = await startHttp();
    const r = await curl(t, ['-o', '/dev/null', '-o', '/dev/null', '-o', '/dev/null', '-w', '%{http_code} %{num_connects}\\n', `${base}/bytes/100`, `${base}/metrics`, `${base}/connections`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['200 1', '200 0', '200 0']);
  });

  it('pipelined requests from a kernel socket are answered in order, then FIN', async () => {
    const { t } = await startHttp();
    const req =
      'GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello' +
      'HEAD /bytes/9 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const r = await rawExchange(t, t.stackAddr, req);
    expect(r.eof).toBe(true);
    expect(r.err).toBeNull();
    const statuses = [...r.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '200', '200', '404']);
    expect(r.text).toContain('\r\n\r\n\x00\x01\x02HTTP/1.1 200');
    expect(r.text).toContain('\r\n\r\nhelloHTTP/1.1 200');
    expect(r.text).toMatch(/Content-Length: 9\r\n\r\nHTTP\/1\.1 404/);
    expect(r.text).toMatch(/Connection: close\r\n/);
  });

  it('a malformed request gets 400 with Connection: close, and FIN', async () => {
    const { t } = await startHttp();
    const r = await rawExchange(t, t.stackAddr, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    expect(r.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(r.text).toContain('Connection: close\r\n');
    expect(r.text).toContain('content-length-and-transfer-encoding');
    expect(r.eof).toBe(true);
    expect(r.err).toBeNull();
  });

  it('HTTP/1.0 with a half-closed client: full response, then FIN', async () => {
    const { t } = await startHttp();
    const r = await rawExchange(t, t.stackAddr, 'GET /bytes/200000 HTTP/1.0\r\n\r\n', { shutdown: true });
    expect(r.eof).toBe(true);
    const split = r.text.indexOf('\r\n\r\n');
    expect(r.text.slice(0, split)).toContain('Connection: close');
    expect(sha256(Buffer.from(r.text.slice(split + 4), 'latin1'))).toBe(patternHash(200000));
  });

  it('/metrics exposes the real stack counters and connection states', async () => {
    const { t, base } = await startHttp();
    const r = await curl(t, [`${base}/metrics`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('# TYPE netstack_connections gauge');
    expect(r.stdout).toMatch(/^netstack_connections\{state="ESTABLISHED"\} [1-9]\d*$/m);
    expect(r.stdout).toMatch(/^netstack_stack_packets_in_total [1-9]\d*$/m);
    expect(r.stdout).toMatch(/^netstack_http_requests_total [1-9]\d*$/m);
  });

  it('an idle keep-alive connection is closed by the server with FIN', async () => {
    const { t, http } = await startHttp({ idleTimeoutMs: 200 });
    const r = await rawExchange(t, t.stackAddr, 'GET /bytes/1 HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutS: 10 });
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(r.eof).toBe(true);
    expect(r.err).toBeNull();
    expect(http.stats.idle_timeout).toBe(1);
  });

  it('a kernel client that reads slowly does not make the server buffer the response', async () => {
    const { t, sockets } = await startHttp();
    const n = 64 * 1024 * 1024;
    // The client waits a second before reading anything, then hashes everything.
    const program = `
import hashlib, socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=30)
s.sendall(b'GET /bytes/${n} HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')
time.sleep(1.0)
data = b''
while b'\\r\\n\\r\\n' not in data:
    data += s.recv(65536)
head, body = data.split(b'\\r\\n\\r\\n', 1)
h = hashlib.sha256(body)
got = len(body)
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    h.update(d)
    got += len(d)
print(got, h.hexdigest())
`;
    let maxQueued = 0;
    const sampler = setInterval(() => {
      for (const s of sockets) maxQueued = Math.max(maxQueued, s.writableLength);
    }, 5);
    onTestFinished(() => clearInterval(sampler));
    const r = await t.exec(['python3', '-c', program, t.stackAddr], { timeoutMs: 60_000 });
    clearInterval(sampler);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`${n} ${patternHash(n)}`);
    expect(sockets).toHaveLength(1);
    expect(maxQueued).toBeGreaterThan(0); // the sampler did see the server blocked on a full socket
    // At most one 64 KiB pattern chunk beyond the socket's high-water mark, plus the head.
    expect(maxQueued).toBeLessThanOrEqual(sockets[0]!.writableHighWaterMark + 64 * 1024 + 1024);
  });
});
