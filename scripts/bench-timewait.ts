/**
 * Workload "timewait": what connections that end in TIME-WAIT cost. Two netstack instances on a
 * MemoryLink and a virtual clock (no kernel, no device, no waiting): the client opens `n`
 * connections to an HTTP-like server that answers and closes first, so the server holds every
 * one of them in TIME-WAIT for 2·MSL (60 s of virtual time), as a web server does.
 *
 *   node --expose-gc bench-timewait.js <n>   (started by bench.ts, NETSTACK_DIST set)
 *
 * The client's ephemeral ports (16,384 of them) repeat over 20,000 connections, and a new SYN
 * for a 4-tuple in TIME-WAIT reopens it (RFC 6191): `timeWait` counts the entries left at the end.
 *
 * Prints one JSON line: { connections, closed, timeWait, bytesPerTimeWait, seconds, gcMs, connPerSec }.
 * bytesPerTimeWait: V8 heap after all n are in TIME-WAIT minus after 2·MSL freed them, over
 * their number, both after a full GC. connPerSec and gcMs: wall time and GC time of the whole
 * run (both stacks in this one process), for the cost of allocating and keeping them.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import type * as AddrModule from '../src/ip/addr.js';
import type * as MemoryModule from '../src/link/memory.js';
import type * as ClockModule from '../src/runtime/clock.js';
import type * as RandomModule from '../src/runtime/random.js';
import type * as StackModule from '../src/stack.js';
import { importDist, measureMemory, report } from './bench-dist.js';

const { Stack } = await importDist<typeof StackModule>('stack.js');
const { MemoryLink } = await importDist<typeof MemoryModule>('link/memory.js');
const { VirtualClock } = await importDist<typeof ClockModule>('runtime/clock.js');
const { seededRandom } = await importDist<typeof RandomModule>('runtime/random.js');
const { parseIpv4 } = await importDist<typeof AddrModule>('ip/addr.js');

const n = Number(process.argv[2] ?? 20_000);
if (!Number.isSafeInteger(n) || n <= 0 || (globalThis as { gc?: unknown }).gc === undefined) {
  report({ error: 'usage: node --expose-gc bench-timewait.js <connections>' });
  process.exit(1);
}

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

const clock = new VirtualClock(1_000_000);
const [linkA, linkB] = MemoryLink.pair(clock, 1500);
const limits = { maxTimeWait: n, maxConnections: n + 1000 };
const client = new Stack({ link: linkA, addr: parseIpv4('10.0.0.1')!, clock, random: seededRandom(3), limits, name: 'client' });
const server = new Stack({ link: linkB, addr: parseIpv4('10.0.0.2')!, clock, random: seededRandom(5), limits, name: 'server' });
const body = Buffer.alloc(128, 0x5a);
server.createServer((s) => s.once('data', () => s.end(body))).listen(80, n);
await clock.sleep(1);

const start = performance.now();
let closed = 0;
for (let i = 0; i < n; i++) {
  if (i % 100 === 0) await clock.sleep(1); // 100 new connections per virtual millisecond
  const c = client.connect({ host: '10.0.0.2', port: 80 });
  c.on('connect', () => c.write('GET / HTTP/1.1\r\n\r\n'));
  c.on('data', () => {});
  c.on('end', () => c.end());
  c.on('close', () => closed++);
}
await clock.run(() => closed < n, 30_000);
const seconds = (performance.now() - start) / 1000;
const timeWait = server.connectionStates()['TIME-WAIT'] ?? 0;
const withTimeWait = measureMemory().heapUsed; // after a full GC
await clock.sleep(61_000); // 2·MSL: every TIME-WAIT ends
const without = measureMemory().heapUsed;
report({
  connections: n,
  closed,
  timeWait,
  bytesPerTimeWait: timeWait > 0 ? (withTimeWait - without) / timeWait : null,
  seconds,
  gcMs,
  connPerSec: n / seconds,
});
