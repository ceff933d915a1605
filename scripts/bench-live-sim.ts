/**
 * `npm run bench:live -- --sim` runs this: what watching costs, measured as CPU time of this
 * process on the virtual clock (no kernel, no wrk, so other work on the machine disturbs it
 * less than the wrk run). Two stacks over a MemoryLink; the client opens N connections one
 * after another (request, 128-byte response, close) with the watcher off and on, alternating.
 * Then one viewer's fixed cost: 10,000 open connections, one event stream with a story
 * selected, CPU per second of wall time while nothing else happens.
 */
import { parseIpv4 } from '../src/ip/addr.js';
import { MemoryLink } from '../src/link/memory.js';
import { VirtualClock } from '../src/runtime/clock.js';
import { seededRandom } from '../src/runtime/random.js';
import { Stack } from '../src/stack.js';
import type { HttpRequest, HttpResponse } from '../src/http/server.js';
import { createLiveView } from '../src/web/live.js';
import { Watcher } from '../src/web/watch.js';

function stacks() {
  const clock = new VirtualClock(1_000_000);
  const [la, lb] = MemoryLink.pair(clock, 1500);
  const secret = new Uint8Array(16).fill(7);
  const a = new Stack({ link: la, addr: parseIpv4('10.0.0.1')!, clock, isnSecret: secret, random: seededRandom(1) });
  const b = new Stack({ link: lb, addr: parseIpv4('10.0.0.2')!, clock, isnSecret: secret, random: seededRandom(2) });
  const body = Buffer.alloc(128, 0x61);
  b.createServer((s) => {
    s.on('data', () => s.end(body));
    s.on('error', () => undefined);
  }).listen(80);
  return { clock, a, b };
}

async function connections(n: number, watch: boolean): Promise<number> {
  const { clock, a, b } = stacks();
  const w = watch ? new Watcher(b) : undefined;
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    let closed = false;
    const c = a.connect({ host: '10.0.0.2', port: 80 });
    c.on('data', () => undefined);
    c.on('end', () => c.end());
    c.on('close', () => (closed = true));
    c.on('connect', () => c.write('GET /bytes/128 HTTP/1.1\r\nHost: x\r\n\r\n'));
    await clock.run(() => !closed, 10_000);
  }
  const d = process.cpuUsage(t0);
  w?.detach();
  return (d.user + d.system) / n;
}

async function viewerCost(open: number, seconds: number): Promise<{ idle: number; viewer: number }> {
  const { clock, a, b } = stacks();
  const watcher = new Watcher(b);
  const sockets = [];
  for (let i = 0; i < open; i++) {
    const c = a.connect({ host: '10.0.0.2', port: 80 });
    c.on('error', () => undefined);
    sockets.push(c);
    if (i % 200 === 199) await clock.sleep(50);
  }
  await clock.sleep(1000);
  const view = {
    addr: '10.0.0.2',
    startedAt: 0,
    stats: () => b.stats(),
    connections: (limit?: number) => b.connections(limit),
    connectionStates: () => b.connectionStates(),
  };
  const live = createLiveView({ watcher, view, hostAddr: '10.0.0.1', canSeeDetails: () => true, now: () => clock.now() });
  const measure = async () => {
    const t0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const d = process.cpuUsage(t0);
    return (d.user + d.system) / 1000 / seconds; // ms of CPU per second
  };
  const idle = await measure();
  let written = 0;
  const res = {
    status: 200,
    headersSent: false,
    setHeader: () => undefined,
    write: (c: string) => ((written += c.length), Promise.resolve()),
    end: () => undefined,
  } as unknown as HttpResponse;
  const req = { method: 'GET', path: '/live/events', query: 'story=1', remoteAddress: '10.0.0.1', remotePort: 1 } as unknown as HttpRequest;
  void live.handle(req, res);
  const viewer = await measure();
  live.close();
  process.stderr.write(`viewer: ${(written / seconds / 1024).toFixed(1)} KiB/s of events, ${b.connections().length} connections\n`);
  return { idle, viewer };
}

export async function simBench(rounds: number, n: number, seconds: number): Promise<void> {
  const off: number[] = [];
  const on: number[] = [];
  // Warm up the JIT for both ways first.
  await connections(Math.min(n, 500), false);
  await connections(Math.min(n, 500), true);
  for (let r = 0; r < rounds; r++) {
    off.push(await connections(n, false));
    on.push(await connections(n, true));
    process.stderr.write(`round ${r + 1}: ${off.at(-1)!.toFixed(1)} µs/connection without the watcher, ${on.at(-1)!.toFixed(1)} with\n`);
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const [mOff, mOn] = [med(off), med(on)];
  // Both stacks run in this process: the cost per connection counts the client's work too.
  console.log(`\nsim: ${n} connections (GET, 128-byte response, close) over a MemoryLink, median of ${rounds} rounds, CPU of both stacks`);
  console.log(`  watcher off  ${mOff.toFixed(1)} µs/connection`);
  console.log(`  watcher on   ${mOn.toFixed(1)} µs/connection  (${mOn >= mOff ? '+' : ''}${(((mOn - mOff) / mOff) * 100).toFixed(1)}%)`);
  const v = await viewerCost(10_000, seconds);
  console.log(`  one viewer with 10,000 open connections: ${v.viewer.toFixed(1)} ms CPU per second (idle without it: ${v.idle.toFixed(1)})`);
}
