/**
 * The kernel side of `npm run bench`: Node's own `http` server on kernel TCP sockets,
 * serving the same routes as netstack's bench server, so each workload compares the
 * two stacks (and HTTP servers) doing the same application work:
 *
 *   GET  /           the status page, rendered by the same function netstack's `/` uses
 *                    (renderStatusPage from src/http/routes.ts), fed this process's
 *                    open sockets and counters
 *   GET  /bytes/N    N bytes, byte i = i mod 256, streamed with backpressure
 *   POST /echo       the request body, streamed back
 *   POST /sink       the request body, counted and dropped; answers the count
 *
 * Like netstack's HTTP server it closes a keep-alive connection after 1000 requests
 * (Node's own default is no limit), so both sides open the same number of connections.
 *
 *   node kernel-peer.js --addr A [--port 80]       (NETSTACK_DIST set by bench.ts)
 *
 * With --dev D --host CIDR [--mtu M] the same Node `http` server runs on netstack's TCP
 * instead (a Stack on its own TUN device D, answering for --addr; the bench's "Node http on
 * netstack" column): each accepted TcpSocket is handed to it with `server.emit('connection')`,
 * which is how a Node user puts netstack under an existing server.
 *
 * Prints {"ready": true, ...} once listening; "mem" / "stats" / "quit" on stdin as for
 * bench-server.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type * as RoutesModule from '../src/http/routes.js';
import type * as AddrModule from '../src/ip/addr.js';
import type * as TunModule from '../src/link/tun.js';
import type * as StackModule from '../src/stack.js';
import { importDist, measureMemory, report } from './bench-dist.js';

const { renderStatusPage } = await importDist<typeof RoutesModule>('http/routes.js');

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const addr = opt('addr');
const port = Number(opt('port') ?? 80);
if (!addr || !Number.isInteger(port)) throw new Error('usage: kernel-peer --addr A [--port P]');

/** One 64 KiB block of the /bytes pattern; 65536 is a multiple of 256, so copies continue it exactly. */
const PATTERN = Buffer.allocUnsafe(64 * 1024);
for (let i = 0; i < PATTERN.length; i++) PATTERN[i] = i & 0xff;
const MAX_BYTES = 2 ** 40;

const counters = { requests: 0, connections: 0, 'bytes.out': 0, 'bytes.in': 0 };
const sockets = new Set<Socket>();
const startedAt = Date.now();

/** What renderStatusPage shows: this process's sockets and counters, as netstack shows its own. */
const view: RoutesModule.StackView = {
  addr,
  startedAt,
  stats: () => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(counters)) out[`http.${k}`] = v;
    for (const [k, v] of Object.entries(process.resourceUsage())) out[`process.${k}`] = v;
    return out;
  },
  connections: () =>
    [...sockets].map((s) => ({
      local: `${s.localAddress}:${s.localPort}`,
      remote: `${s.remoteAddress}:${s.remotePort}`,
      state: 'ESTABLISHED',
      sndUna: 0,
      sndNxt: 0,
      rcvNxt: 0,
      sndWnd: 0,
      rcvWnd: 0,
      srtt: 0,
      rto: 0,
      retransmits: 0,
    })),
};

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  counters.requests++;
  const path = (req.url ?? '/').split('?')[0]!;
  if (path === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
    const body = renderStatusPage(view, Date.now());
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  const bytes = /^\/bytes\/(\d{1,16})$/.exec(path);
  if (bytes && (req.method === 'GET' || req.method === 'HEAD')) {
    const n = Number(bytes[1]);
    if (n > MAX_BYTES) return text(res, 400, 'N must be at most 2^40\n');
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': n });
    if (req.method === 'HEAD') return void res.end();
    for (let left = n; left > 0; ) {
      const k = Math.min(left, PATTERN.length);
      left -= k;
      counters['bytes.out'] += k;
      if (!res.write(k === PATTERN.length ? PATTERN : PATTERN.subarray(0, k))) {
        // Backpressure: wait for the kernel socket to drain, or stop if the client left.
        const ok = await new Promise<boolean>((resolve) => {
          const onDrain = () => done(true);
          const onClose = () => done(false);
          const done = (v: boolean) => {
            res.off('drain', onDrain);
            res.off('close', onClose);
            resolve(v);
          };
          res.on('drain', onDrain);
          res.on('close', onClose);
        });
        if (!ok) return;
      }
    }
    res.end();
    return;
  }
  if (path === '/echo' && req.method === 'POST') {
    const headers: Record<string, string> = { 'Content-Type': req.headers['content-type'] ?? 'application/octet-stream' };
    if (req.headers['content-length'] !== undefined) headers['Content-Length'] = req.headers['content-length'];
    res.writeHead(200, headers);
    req.pipe(res);
    return;
  }
  if (path === '/sink' && req.method === 'POST') {
    let n = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) n += chunk.length;
    counters['bytes.in'] += n;
    return text(res, 200, `${n}\n`);
  }
  text(res, 404, `not found: ${path}\n`);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const server = createServer((req, res) => {
  handle(req, res).catch((err: Error) => {
    if (!res.headersSent) text(res, 500, `${err.message}\n`);
    else res.destroy();
  });
});
server.maxRequestsPerSocket = 1000; // as netstack's HttpServer (maxRequestsPerConnection)
server.on('connection', (s: Socket) => {
  counters.connections++;
  sockets.add(s);
  s.once('close', () => sockets.delete(s));
});
const dev = opt('dev');
if (dev === undefined) {
  server.listen({ host: addr, port, backlog: 4096 }, () => {
    report({ ready: true, pid: process.pid, addr, port, mem: measureMemory() });
  });
} else {
  const { Stack } = await importDist<typeof StackModule>('stack.js');
  const { TunLink } = await importDist<typeof TunModule>('link/tun.js');
  const { parseCidr, parseIpv4 } = await importDist<typeof AddrModule>('ip/addr.js');
  const host = parseCidr(opt('host') ?? '');
  const ip = parseIpv4(addr);
  if (!host || ip === undefined) throw new Error('usage: kernel-peer --addr A --dev D --host CIDR [--mtu M] [--port P]');
  const mtu = Number(opt('mtu') ?? 1500);
  const link = TunLink.open({ name: dev, mtu });
  link.configure({ addr: host.addr, prefix: host.prefix, mtu });
  const stack = new Stack({ link, addr: ip, name: 'node-on-netstack', prefix: host.prefix, gateway: host.addr });
  // allowHalfOpen, as net.Server gives http.Server's sockets.
  stack.createServer({ allowHalfOpen: true }, (socket) => server.emit('connection', socket)).listen(port, 4096);
  report({ ready: true, pid: process.pid, addr, port, dev, mem: measureMemory() });
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  switch (line.trim()) {
    case 'stats':
      report({ stats: view.stats() });
      break;
    case 'mem':
      report({ mem: measureMemory() });
      break;
    case 'count':
      report({ count: sockets.size });
      break;
    case 'quit':
      process.exit(0);
      break;
    default:
      report({ error: `unknown command ${JSON.stringify(line)}` });
  }
});
rl.on('close', () => process.exit(0));
