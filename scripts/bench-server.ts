/**
 * The netstack side of `npm run bench`: a Stack on a TUN device, run as compiled
 * JavaScript with plain `node`, pinned to core 0 by bench.ts and started inside the
 * client namespace, so the TUN's kernel side is that namespace's interface.
 *
 *   node bench-server.js --mode http|hold|proxy --dev D --host CIDR --addr A [--mtu M] [--port P] [--config FILE] [--tap] [--offload on|off]
 *
 * --offload: virtio-net offloads on the TUN (default on, as `netstack up`; off when the kernel refuses).
 *
 * --tap: a TAP device instead of TUN, the stack speaking Ethernet II and ARP on it.
 *
 * Modes:
 *   http  the HTTP application of `netstack up` (src/http/routes.ts: `/`, `/bytes/N`,
 *         `POST /echo`, `/metrics`) on the stack's own TCP.
 *   proxy `netstack up --config FILE`'s reverse proxy (src/proxy), for proxy_keepalive/proxy_newconn.
 *   hold  a TcpServer that accepts connections and holds them, idle, doing nothing else:
 *         the scale workload measures what one established connection costs.
 *
 * bench.ts talks to it over stdin/stdout, one line each way:
 *   → "stats"  ← {"stats": {...}}                   Stack + TunLink (+ HTTP) counters, and GC time (gc.*)
 *   → "mem"    ← {"mem": {rss, heapUsed, ...}}      after a full GC (run with --expose-gc)
 *   → "offload on|off" ← {"offload": bool}          TCP super-segments on or off from now on (if the TUN has them)
 *   → "count"  ← {"count": N, "established": E}     held sockets / ESTABLISHED connections
 *   → "prof-start"       ← {"profiling": true}      start V8's CPU profiler (node:inspector)
 *   → "prof-stop FILE"   ← {"profiled": FILE}       stop it and write FILE (.cpuprofile)
 *   → "quit"   ← (exits 0; a --cpu-prof profile is written on this exit)
 * The first line it prints is {"ready": true, ...} once the device is up and listening.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type * as AddrModule from '../src/ip/addr.js';
import type * as TunModule from '../src/link/tun.js';
import type * as StackModule from '../src/stack.js';
import type * as ConfigModule from '../src/proxy/config.js';
import type * as UpModule from '../src/cli/up.js';
import type * as LogModule from '../src/runtime/log.js';
import type { Duplex } from 'node:stream';
import { importDist, measureMemory, report } from './bench-dist.js';

const { Stack } = await importDist<typeof StackModule>('stack.js');
const { TunLink } = await importDist<typeof TunModule>('link/tun.js');
const { parseCidr, parseIpv4 } = await importDist<typeof AddrModule>('ip/addr.js');

interface Args {
  mode: 'http' | 'hold' | 'proxy';
  config: string | undefined;
  dev: string;
  host: string;
  addr: string;
  mtu: number;
  port: number;
  tap: boolean;
  offload: boolean;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const mode = get('mode') ?? 'http';
  if (mode !== 'http' && mode !== 'hold' && mode !== 'proxy') throw new Error(`--mode must be http, hold or proxy, got ${mode}`);
  const dev = get('dev');
  const host = get('host');
  const addr = get('addr');
  if (!dev || !host || !addr) throw new Error('usage: bench-server --mode http|hold --dev D --host CIDR --addr A [--mtu M] [--port P]');
  if (mode === 'proxy' && !get('config')) throw new Error('--mode proxy needs --config FILE');
  return { mode, config: get('config'), dev, host, addr, mtu: Number(get('mtu') ?? 1500), port: Number(get('port') ?? 80), tap: argv.includes('--tap'), offload: (get('offload') ?? 'on') === 'on' };
}

const args = parseArgs(process.argv.slice(2));
const hostCidr = parseCidr(args.host);
const addr = parseIpv4(args.addr);
if (!hostCidr || addr === undefined) throw new Error(`bad --host ${args.host} or --addr ${args.addr}`);

// The device: created in this process's namespace, host side configured by ioctl.
const link = TunLink.open({ name: args.dev, mtu: args.mtu, tap: args.tap, offload: args.offload && !args.tap });
link.configure({ addr: hostCidr.addr, prefix: hostCidr.prefix, mtu: args.mtu });
// TAP: a fixed locally administered MAC (02:...), the kernel's address as the gateway.
const ethernet = args.tap ? { ethernet: { mac: Uint8Array.of(0x02, 0, 0, 0xbe, 0x0c, 0x02) } } : {};
const stack = new Stack({ link, addr, name: 'bench', prefix: hostCidr.prefix, gateway: hostCidr.addr, ...ethernet });

let httpStats: (() => Record<string, number>) | undefined;
const held = new Set<Duplex>();

if (args.mode === 'http') {
  // The same application `netstack up` serves (bench-app.ts wires src/http into a Stack).
  const { startHttpApp } = await import('./bench-app.js');
  const app = await startHttpApp(stack, args.port);
  httpStats = app.stats;
} else if (args.mode === 'proxy') {
  // The reverse proxy exactly as `netstack up --config` wires it (access log off, like the nginx it is compared with).
  const { parseProxyConfig } = await importDist<typeof ConfigModule>('proxy/config.js');
  const { buildHttpApp } = await importDist<typeof UpModule>('cli/up.js');
  const { silentLogger } = await importDist<typeof LogModule>('runtime/log.js');
  const proxy = parseProxyConfig(readFileSync(args.config!, 'utf8'), args.config!);
  const app = buildHttpApp(stack, { port: args.port, logger: silentLogger, proxy });
  httpStats = () => ({ ...app.proxy?.proxy.stats });
} else {
  const server = stack.createServer((socket) => {
    held.add(socket);
    socket.on('error', () => {}); // a reset while held is the client's business
    socket.once('close', () => held.delete(socket));
  });
  server.listen(args.port, 4096);
}

/**
 * Time this process spent in garbage collection, in ms: scavenges of the young generation
 * (gc.minor.ms) and mark-compacts of the whole heap (gc.major.ms). bench.ts keeps what changed
 * during each run with the other counters, so a round's JSON says how much of its CPU went to GC.
 */
const gcTime = { 'gc.minor.ms': 0, 'gc.major.ms': 0, 'gc.minor.count': 0, 'gc.major.count': 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as { detail?: { kind?: number } }).detail?.kind ?? 0;
    if (kind & perfConstants.NODE_PERFORMANCE_GC_MINOR) {
      gcTime['gc.minor.ms'] += e.duration;
      gcTime['gc.minor.count']++;
    } else if (kind & perfConstants.NODE_PERFORMANCE_GC_MAJOR) {
      gcTime['gc.major.ms'] += e.duration;
      gcTime['gc.major.count']++;
    }
  }
}).observe({ entryTypes: ['gc'] });

function established(): number {
  let n = 0;
  for (const c of stack.connections()) if (c.state === 'ESTABLISHED') n++;
  return n;
}

// A CPU profile of exactly one measured run (bench.ts --cpu-prof), not of the whole process.
let profiler: Session | undefined;
function startProfile(): void {
  profiler ??= new Session();
  profiler.connect();
  profiler.post('Profiler.enable', () =>
    profiler!.post('Profiler.start', (err) => report(err ? { error: `Profiler.start: ${err.message}` } : { profiling: true })),
  );
}
function stopProfile(file: string): void {
  if (!profiler) return report({ error: 'prof-stop without prof-start' });
  profiler.post('Profiler.stop', (err, res) => {
    if (err) return report({ error: `Profiler.stop: ${err.message}` });
    writeFileSync(file, JSON.stringify(res.profile));
    profiler!.disconnect();
    report({ profiled: file });
  });
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [command = '', arg = ''] = line.trim().split(/\s+(.*)/);
  switch (command) {
    case 'prof-start':
      startProfile();
      break;
    case 'prof-stop':
      stopProfile(arg);
      break;
    case 'stats':
      report({ stats: { ...stack.stats(), ...prefixed('tun.', link.stats), ...prefixed('http.', httpStats?.() ?? {}), ...gcTime } });
      break;
    case 'mem':
      report({ mem: { ...measureMemory(), idleCollections: link.stats.idleCollections } });
      break;
    case 'offload':
      report({ offload: stack.setOffload(arg === 'on') });
      break;
    case 'count':
      report({ count: held.size, established: established() });
      break;
    case 'quit':
      stack.close();
      process.exit(0);
      break;
    default:
      report({ error: `unknown command ${JSON.stringify(line)}` });
  }
});
// bench.ts gone (stdin closed): stop too, never linger.
rl.on('close', () => {
  stack.close();
  process.exit(0);
});

function prefixed(prefix: string, o: object): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'number') out[prefix + k] = v;
  return out;
}

report({ ready: true, pid: process.pid, mode: args.mode, dev: link.name, mtu: link.mtu, mem: measureMemory() });
