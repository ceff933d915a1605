/**
 * Node's own `http.Server` served over our TCP: every accepted TcpSocket is handed to it with
 * `httpServer.emit('connection', socket)`, exactly as net.Server does with a net.Socket. This is
 * the compatibility test for the socket API (DESIGN.md): Node's HTTP machinery uses our
 * Duplex — backpressure, half-close, timeouts — and curl in the namespace is the client,
 * talking to the kernel's TCP on its side.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it, onTestFinished } from 'vitest';
import { parseIpv4 } from '../../src/ip/addr.js';
import { Stack } from '../../src/stack.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import type { NetnsTun } from '../helpers/netns.js';
import { createNetnsTun, describeInterop } from '../helpers/netns.js';
import { waitFor } from '../helpers/kernel-peer.js';

const dir = mkdtempSync(join(tmpdir(), 'netstack-http-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MB = 1 << 20;
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A Stack on the namespace's TUN whose port 80 feeds every connection to a Node http.Server. */
function serveHttp(t: NetnsTun, handler: http.RequestListener): { stack: Stack; httpServer: http.Server; sockets: TcpSocket[] } {
  const stack = new Stack({ link: t.link, addr: parseIpv4(t.stackAddr)! });
  const httpServer = http.createServer(handler);
  const sockets: TcpSocket[] = [];
  stack
    .createServer((socket) => {
      sockets.push(socket);
      httpServer.emit('connection', socket);
    })
    .listen(80);
  onTestFinished(() => {
    httpServer.close();
    stack.close();
  });
  return { stack, httpServer, sockets };
}

/** curl inside the namespace; `args` come after the common options. */
function curl(t: NetnsTun, args: string[]) {
  return t.exec(['curl', '--http1.1', '-sS', '--max-time', '30', ...args], { timeoutMs: 40_000 });
}

describeInterop("Node's http.Server over netstack TCP, curl from the kernel", () => {
  it('serves two URLs over one keep-alive connection (curl reuses it)', async () => {
    const t = await createNetnsTun();
    const requestSockets: unknown[] = [];
    const { stack, sockets } = serveHttp(t, (req, res) => {
      requestSockets.push(req.socket);
      const body = `hello from ${req.url} over netstack\n`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    const one = join(dir, 'one.txt');
    const two = join(dir, 'two.txt');
    const base = `http://${t.stackAddr}`;
    const r = await curl(t, ['--write-out', '%{num_connects} %{http_code}\\n', '-o', one, `${base}/one`, '-o', two, `${base}/two`]);
    expect(r.code, r.stderr).toBe(0);
    // One new connection for the first URL, none for the second: the connection was reused.
    expect(r.stdout).toBe('1 200\n0 200\n');
    expect(readFileSync(one, 'utf8')).toBe('hello from /one over netstack\n');
    expect(readFileSync(two, 'utf8')).toBe('hello from /two over netstack\n');
    expect(sockets).toHaveLength(1);
    expect(requestSockets).toEqual([sockets[0], sockets[0]]);
    expect(stack.stats()['tcp.passive-open']).toBe(1);
  });

  it('sends a 10 MB response intact (sha256 of what curl saved)', async () => {
    const t = await createNetnsTun();
    const big = randomBytes(10 * MB);
    serveHttp(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.length });
      res.end(big);
    });
    const file = join(dir, 'big.bin');
    const r = await curl(t, ['--write-out', '%{http_code} %{size_download} %{time_total}', '-o', file, `http://${t.stackAddr}/big`]);
    expect(r.code, r.stderr).toBe(0);
    const [code, size, seconds] = r.stdout.trim().split(' ');
    expect(code).toBe('200');
    expect(Number(size)).toBe(big.length);
    const got = readFileSync(file);
    expect(got.length).toBe(big.length);
    expect(sha256(got)).toBe(sha256(big));
    console.log(`[http] 10 MB GET: ${Number(seconds).toFixed(2)} s, ${(10 / Number(seconds)).toFixed(1)} MB/s`);
  });

  it('receives a 5 MB upload (Expect: 100-continue) and answers with its sha256', async () => {
    const t = await createNetnsTun();
    const upload = randomBytes(5 * MB);
    const file = join(dir, 'upload.bin');
    writeFileSync(file, upload);
    serveHttp(t, (req, res) => {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      req.on('end', () => res.end(`${n} ${h.digest('hex')}`));
    });
    const r = await curl(t, ['--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', `http://${t.stackAddr}/upload`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${upload.length} ${sha256(upload)}`);
  });

  it('serves 100 requests with Connection: close, one connection each; every close of ours ends in TIME-WAIT', async () => {
    const t = await createNetnsTun();
    const { stack } = serveHttp(t, (req, res) => {
      res.setHeader('connection', 'close'); // Node ends the socket after the response: we close first
      res.end(`response to ${req.url}\n`);
    });
    const urls = Array.from({ length: 100 }, (_, i) => ['-o', '/dev/null', `http://${t.stackAddr}/${i}`]).flat();
    const r = await curl(t, ['--write-out', '%{http_code} %{num_connects}\\n', ...urls]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('200 1\n'.repeat(100));
    expect(stack.stats()['tcp.passive-open']).toBe(100);
    // Each ends FIN-WAIT-2 -> TIME-WAIT, or CLOSING -> TIME-WAIT when curl's FIN crossed ours.
    const allTimeWait = () => {
      const states = stack.connections().map((c) => c.state);
      return states.length === 100 && states.every((s) => s === 'TIME-WAIT');
    };
    expect(await waitFor(allTimeWait), stack.connections().map((c) => c.state).join(',')).toBe(true);
  });
});
