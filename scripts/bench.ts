/**
 * `npm run bench`: netstack side by side with the Linux kernel.
 *
 * Two HTTP servers with the same routes, each in its own network namespace and pinned to
 * the same core; the load generators (curl, wrk, a Node client) in a third, the client
 * namespace, pinned to the other core:
 *
 *   netstack  scripts/bench-server.ts: Stack + TunLink + src/http, compiled JS (dist/),
 *             its TUN's kernel side is the client namespace's interface
 *   kernel    scripts/kernel-peer.ts: Node's `http` on kernel sockets, behind a veth pair
 *
 * Each workload runs against both, alternating (netstack, kernel, netstack, kernel, ...)
 * for `--rounds` rounds, so slow drift of the machine hits both alike:
 *
 *   bulk_download    curl GET /bytes/1 GiB                     Gbit/s
 *   bulk_upload      POST 1 GiB to /sink (one Node client)     Gbit/s
 *   bulk_download_loss  curl GET /bytes/50 MiB with 2% random loss  Mbit/s (16 MiB with --quick)
 *                    of the data (iptables `statistic` in the client namespace's INPUT; kernel
 *                    offloads off on the veth pair and netstack's TCP super-segments off, so both
 *                    lose MSS-sized packets)
 *   keepalive        wrk -t1 -c50 -d10s GET /                  req/s (+ latency p50/p99)
 *   newconn          the same with Connection: close           req/s
 *   keepalive_small, newconn_small: the same two on GET /bytes/128 for 5 s, because the
 *                    status page `/` grows with the connections it lists
 *
 * The reverse proxy against Debian's nginx (1 worker, the same upstream block, both pinned to
 * the server core), three Node upstreams (kernel-peer.ts) in the client namespace:
 *
 *   proxy_keepalive  wrk -c50 GET /bytes/128 through the proxy, upstream keep-alive pool   req/s
 *   proxy_newconn    the same with Connection: close from wrk                              req/s
 *
 * Then the netstack-only workloads: two stacks over a MemoryLink (no kernel at all), without and
 * with emulated offload (memory, memory_offload: 64 KiB super-segments), and 10,000 idle
 * connections held by netstack (memory per connection). Last, `hoarders`: 500
 * clients POST large bodies to /echo and never read, against a fresh server on each side:
 * RSS growth at its peak and after the clients have gone.
 *
 * Prints a table of medians (min–max) with the netstack/kernel ratio of every round, and
 * writes the same as JSON to bench/results/<date>.json (or --out). The script installs
 * nothing: it says what is missing. It deletes every namespace it creates, also on error
 * and on Ctrl-C (scripts/netns.ts).
 *
 *   npm run bench                       # the full run: 3 rounds, a few minutes
 *   npm run bench -- --quick            # 1 short round, checks the harness works
 *   npm run bench -- --only bulk_download,keepalive --rounds 5
 *   npm run bench -- --cpu-prof /tmp/prof   # a V8 CPU profile of each netstack run
 *   npm run bench -- --tap              # also netstack on a TAP device (Ethernet + ARP): rows <id>_tap
 */
import { spawnSync } from 'node:child_process';
import { accessSync, appendFileSync, constants as fsConstants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { BenchResult, Peer, Side, SideResult, Target, WorkloadResult } from './bench-report.js';
import { PEERS, PEER_LABELS, emptySide, finish, fmt, renderTable } from './bench-report.js';
import { JsonLineProcess } from './bench-proc.js';
import type { Message } from './bench-proc.js';
import { MeasureError, clientUpload, curlDownload, pinned, wrk } from './bench-tools.js';
import type { Sample } from './bench-tools.js';
import type { BenchNet } from './netns.js';
import { cleanupNow, createBenchNet, haveCommand, onCleanup, run, runOk, spawnTracked } from './netns.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');

// ───────────────────────── options ─────────────────────────

const WORKLOADS = [
  'bulk_download', 'bulk_upload', 'bulk_download_loss', 'keepalive', 'newconn', 'keepalive_small', 'newconn_small', 'memory', 'memory_offload', 'scale',
  'timewait', 'proxy_keepalive', 'proxy_newconn', 'hoarders',
] as const;
/** Workloads run by their own runners (not the netstack-vs-kernel-peer pair). */
const OWN_RUNNER: readonly WorkloadId[] = ['memory', 'memory_offload', 'scale', 'timewait', 'proxy_keepalive', 'proxy_newconn', 'hoarders'];
type WorkloadId = (typeof WORKLOADS)[number];

const argv = yargs(hideBin(process.argv))
  .scriptName('npm run bench --')
  .usage('$0 [options]\n\nnetstack side by side with the Linux kernel (needs root, /dev/net/tun, curl, wrk, taskset).')
  .option('quick', { type: 'boolean', default: false, describe: 'one short round: checks that the harness works' })
  .option('rounds', { type: 'number', describe: 'rounds per workload (default 3, --quick 1)' })
  .option('out', { type: 'string', describe: 'JSON results file (default bench/results/<date>.json)' })
  .option('only', { type: 'string', describe: `comma-separated workloads: ${WORKLOADS.join(', ')}` })
  .option('build', { type: 'boolean', default: true, describe: 'compile dist/ first (--no-build to skip)' })
  .option('tap', {
    type: 'boolean',
    default: false,
    describe: 'also run netstack on a TAP device (Ethernet II + ARP) in each round, right after the TUN run: rows <workload>_tap',
  })
  .option('cpu-prof', { type: 'string', describe: "write a V8 CPU profile of each netstack run to this directory (open in Chrome DevTools)" })
  .option('peers', {
    type: 'string',
    default: PEERS.join(','),
    describe: `reference servers measured beside netstack and the kernel peer (${PEERS.join(', ')}, or none)`,
  })
  .strict()
  .help()
  .parseSync();

const quick = argv.quick;
const rounds = argv.rounds ?? (quick ? 1 : 3);
const only = new Set<WorkloadId>(
  argv.only
    ? argv.only.split(',').map((s) => {
        const id = s.trim() as WorkloadId;
        if (!WORKLOADS.includes(id)) fail(`--only: unknown workload "${s}" (known: ${WORKLOADS.join(', ')})`);
        return id;
      })
    : WORKLOADS,
);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) fail('--rounds must be an integer from 1 to 50');
const peersWanted = new Set<Peer>(
  argv.peers === 'none' || argv.peers === ''
    ? []
    : argv.peers.split(',').map((s) => {
        const id = s.trim() as Peer;
        if (!PEERS.includes(id)) fail(`--peers: unknown reference server "${s}" (known: ${PEERS.join(', ')}, or none)`);
        return id;
      }),
);

/** Sizes and durations: the full run, and the --quick one (well under a minute in all). */
const P = quick
  ? { downloadBytes: 32 << 20, uploadBytes: 16 << 20, wrkSeconds: 2, wrkSmallSeconds: 2, memoryBytes: 64 << 20, scaleConnections: 1000, scaleSettleMs: 1000, timewaitConnections: 2000, hoarders: 50, hoardBytes: 8 << 20, hoardSeconds: 3 }
  : { downloadBytes: 1 << 30, uploadBytes: 1 << 30, wrkSeconds: 10, wrkSmallSeconds: 5, memoryBytes: 1 << 30, scaleConnections: 10_000, scaleSettleMs: 15_000, timewaitConnections: 20_000, hoarders: 500, hoardBytes: 8 << 20, hoardSeconds: 5 };
const WRK_CONNECTIONS = 50;
/** Body of the small fixed response (GET /bytes/128) for the *_small request-rate runs. */
const SMALL_BYTES = 128;

// Pinning: servers on one core, load generators on another (both on 0 with a single core).
const cores = availableParallelism();
const SERVER_CPU = 0;
const CLIENT_CPU = cores >= 2 ? 1 : 0;

function fail(msg: string): never {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(1);
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

// ───────────────────────── preflight ─────────────────────────

function preflight(): void {
  const problems: string[] = [];
  if (process.platform !== 'linux') problems.push('it needs Linux (network namespaces, TUN)');
  if (process.getuid?.() !== 0) problems.push('it needs root, to create network namespaces and a TUN device (sudo npm run bench)');
  try {
    accessSync('/dev/net/tun', fsConstants.R_OK | fsConstants.W_OK);
  } catch {
    problems.push('/dev/net/tun is missing (modprobe tun, or give the container the device)');
  }
  const tools: Array<[string, string]> = [
    ['ip', 'iproute2'],
    ['taskset', 'util-linux'],
    ['prlimit', 'util-linux'],
    ['curl', 'curl'],
    ['wrk', 'wrk'],
    ['nginx', 'nginx'],
    ['iptables', 'iptables'],
    ['ethtool', 'ethtool'],
  ];
  const missing = tools.filter(([cmd]) => !haveCommand(cmd));
  if (missing.length) {
    problems.push(
      `missing commands: ${missing.map(([c]) => c).join(', ')} (Debian/Ubuntu: apt-get install ${[...new Set(missing.map(([, p]) => p))].join(' ')})`,
    );
  }
  if (!existsSync(join(ROOT, 'build/Release/netstack_tun.node'))) {
    problems.push('the TUN addon is not built (build/Release/netstack_tun.node): run npm install or npm run build');
  }
  if (problems.length) fail(`cannot run:\n  - ${problems.join('\n  - ')}`);
  if (cores < 2) log('bench: only one CPU core: servers and load generators share core 0 (numbers will be lower)');
}

/** Compile src/ to dist/ (the netstack processes run that, with plain node). */
function build(): void {
  log('bench: compiling dist/ (tsc -p tsconfig.build.json)');
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) {
    // tsc still emits on type errors; go on if it did, but say so.
    log(`bench: warning: tsc reported errors (dist/ may be partly stale):\n${(r.stdout + r.stderr).trim().slice(0, 2000)}`);
  }
  if (!existsSync(join(DIST, 'stack.js'))) fail('dist/stack.js does not exist after the build');
}

/**
 * The worker scripts are TypeScript; transpile them (types stripped, nothing else) into
 * a temporary directory so the measured processes are plain `node` without a loader.
 */
function transpileWorkers(dir: string): void {
  const files = ['bench-dist', 'bench-app', 'bench-server', 'bench-memory', 'bench-timewait', 'bench-connect', 'bench-scale-client', 'bench-hoarders-client', 'bench-upload-client', 'kernel-peer'];
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  for (const f of files) {
    const source = readFileSync(join(ROOT, 'scripts', `${f}.ts`), 'utf8');
    const out = ts.transpileModule(source, {
      fileName: `${f}.ts`,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    });
    writeFileSync(join(dir, `${f}.js`), out.outputText);
  }
}

// ───────────────────────── processes ─────────────────────────

interface Ctx {
  net: BenchNet;
  workDir: string;
  env: NodeJS.ProcessEnv;
  /** --cpu-prof: where profiles of netstack's measured runs go. */
  profileDir: string | undefined;
}

/** A server process on the server core, in namespace `ns`; resolves once it says it is ready. */
async function startServer(ctx: Ctx, name: string, ns: string, script: string, args: string[], nodeFlags: string[] = []): Promise<JsonLineProcess> {
  const p = new JsonLineProcess(name, pinned(ns, SERVER_CPU, [process.execPath, ...nodeFlags, join(ctx.workDir, script), ...args]), ctx.env);
  await p.waitFor('ready', 20_000);
  return p;
}

function startNetstack(ctx: Ctx, mode: 'http' | 'hold', dev: string, hostCidr: string, addr: string, tap = false): Promise<JsonLineProcess> {
  const { net } = ctx;
  return startServer(
    ctx,
    `netstack${tap ? ' TAP' : ''} (${mode})`,
    net.clientNs,
    'bench-server.js',
    ['--mode', mode, '--dev', dev, '--host', hostCidr, '--addr', addr, '--mtu', String(net.mtu), '--port', '80', ...(tap ? ['--tap'] : [])],
    ['--expose-gc'],
  );
}

/** --tap: netstack on a TAP device in the client namespace, beside the TUN one. */
const TAP_NET = { dev: 'nsbench2', hostCidr: '10.201.4.1/24', addr: '10.201.4.2' };

// ───────────────────────── reference servers ─────────────────────────

/** Node's http on netstack's TCP (kernel-peer.js --dev): its own TUN in the client namespace. */
const NODE_NET = { dev: 'nsbench4', hostCidr: '10.201.6.1/24', addr: '10.201.6.2' };
/** lwIP's server (scripts/lwip-server.c): its own TUN in the client namespace. */
const LWIP_NET = { dev: 'nsbench3', hostCidr: '10.201.5.1/24', addr: '10.201.5.2' };
/** nginx listens beside the Node kernel peer, in the kernel namespace. */
const NGINX_PORT = 8080;
/** Which reference servers serve which workload (they all serve GET /bytes/N; only Node has `/` and /sink). */
const PEER_WORKLOADS: Partial<Record<WorkloadId, readonly Peer[]>> = {
  bulk_download: ['node_netstack', 'nginx', 'lwip'],
  bulk_upload: ['node_netstack'],
  keepalive: ['node_netstack'],
  newconn: ['node_netstack'],
  keepalive_small: ['node_netstack', 'nginx', 'lwip'],
  newconn_small: ['node_netstack', 'nginx', 'lwip'],
};

interface PeerServer {
  url: string;
  /** The server process, for its CPU time (/proc/PID/stat). */
  pid: number | undefined;
  stop(): Promise<void>;
}

/**
 * Compile the lwIP server with gcc against Debian's liblwip-dev (pkg-config lwip). Returns the
 * binary, or why it cannot be built (the lwIP column is then left out, and the log says why).
 */
async function buildLwip(workDir: string): Promise<{ bin: string } | { error: string }> {
  if (!haveCommand('gcc')) return { error: 'gcc is missing (apt-get install gcc)' };
  const flags = await run(['pkg-config', '--cflags', '--libs', 'lwip']);
  if (flags.code !== 0) return { error: 'pkg-config finds no lwip (apt-get install liblwip-dev pkg-config)' };
  const bin = join(workDir, 'lwip-server');
  const r = await run(['gcc', '-O2', '-o', bin, join(ROOT, 'scripts/lwip-server.c'), ...flags.stdout.trim().split(/\s+/)], { timeoutMs: 120_000 });
  if (r.code !== 0) return { error: `gcc failed: ${r.stderr.trim().slice(0, 1000)}` };
  return { bin };
}

/** The /bytes/N files nginx serves (the i mod 256 pattern, in tmpfs when there is one). */
function makeNginxRoot(sizes: number[]): string {
  const dir = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/netstack-bench-nginx-') : mkdtempSync(join(tmpdir(), 'netstack-bench-nginx-'));
  onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'bytes'));
  const block = Buffer.allocUnsafe(1 << 20);
  for (let i = 0; i < block.length; i++) block[i] = i & 0xff;
  for (const n of new Set(sizes)) {
    const file = join(dir, 'bytes', String(n));
    writeFileSync(file, block.subarray(0, Math.min(n, block.length)));
    for (let done = block.length; done < n; done += block.length) appendFileSync(file, block.subarray(0, Math.min(block.length, n - done)));
  }
  return dir;
}

/** Start the reference servers this run measures; a server that fails to start is left out, with the reason. */
async function startPeers(ctx: Ctx, lwipBin: string | undefined): Promise<Map<Peer, PeerServer>> {
  const { net } = ctx;
  const wanted = new Set<Peer>();
  for (const id of only) for (const p of PEER_WORKLOADS[id] ?? []) if (peersWanted.has(p)) wanted.add(p);
  const peers = new Map<Peer, PeerServer>();
  const tryStart = async (p: Peer, start: () => Promise<PeerServer>) => {
    if (!wanted.has(p)) return;
    try {
      peers.set(p, await start());
    } catch (e) {
      log(`bench: ${PEER_LABELS[p]} left out: ${(e as Error).message}`);
    }
  };
  await tryStart('node_netstack', async () => {
    const proc = await startServer(ctx, 'Node http on netstack', net.clientNs, 'kernel-peer.js', [
      '--addr', NODE_NET.addr, '--port', '80', '--dev', NODE_NET.dev, '--host', NODE_NET.hostCidr, '--mtu', String(net.mtu),
    ]);
    return { url: `http://${NODE_NET.addr}`, pid: proc.child.pid, stop: () => proc.stop() };
  });
  await tryStart('nginx', async () => {
    const sizes = [SMALL_BYTES, SMOKE_BYTES, ...(only.has('bulk_download') ? [P.downloadBytes] : [])];
    const root = makeNginxRoot(sizes);
    const dir = join(ctx.workDir, 'nginx-ref');
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'nginx.conf');
    // One worker and no master (one process, as netstack), the files from tmpfs with sendfile,
    // 1000 requests per keep-alive connection as netstack's HttpServer.
    writeFileSync(conf, [
      'worker_processes 1;', 'daemon off;', 'master_process off;', 'user root;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log warn;`,
      'events { worker_connections 4096; }',
      'http {', '  access_log off;', '  sendfile on;', '  tcp_nopush on;', '  keepalive_requests 1000;', '  default_type application/octet-stream;',
      `  server { listen ${net.kernelAddr}:${NGINX_PORT} backlog=4096; root ${root}; location / { } }`,
      '}', '',
    ].join('\n'));
    const child = spawnTracked(pinned(net.kernelNs, SERVER_CPU, ['nginx', '-p', dir, '-c', conf]), { stdio: 'ignore' });
    const url = `http://${net.kernelAddr}:${NGINX_PORT}`;
    const stop = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    };
    if (!(await answers(ctx, `${url}/bytes/${SMALL_BYTES}`))) {
      await stop();
      throw new Error(`nginx never answered 200 (see ${dir}/error.log)`);
    }
    return { url, pid: child.pid, stop };
  });
  await tryStart('lwip', async () => {
    if (!lwipBin) throw new Error('not built');
    const proc = new JsonLineProcess('lwIP server', pinned(net.clientNs, SERVER_CPU, [
      lwipBin, '--dev', LWIP_NET.dev, '--host', LWIP_NET.hostCidr, '--addr', LWIP_NET.addr, '--port', '80', '--mtu', String(net.mtu),
    ]), ctx.env);
    await proc.waitFor('ready', 20_000);
    return { url: `http://${LWIP_NET.addr}`, pid: proc.child.pid, stop: () => proc.stop() };
  });
  return peers;
}

/** Whether `url` answers 200 within a few seconds (a server just started). */
async function answers(ctx: Ctx, url: string): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    const r = await run(ctx.net.inNs(ctx.net.clientNs, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', url]));
    if (r.stdout === '200') return true;
    await sleep(100);
  }
  return false;
}

/** CPU seconds process `pid` has used so far in user space and in the kernel, from /proc/PID/stat; undefined if unknown. */
function cpuSeconds(pid: number | undefined): { user: number; system: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the command name (which may hold spaces) start at ") ": utime and stime are fields 14 and 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / CLOCK_TICKS, system: Number(f[12]) / CLOCK_TICKS };
  } catch {
    return undefined;
  }
}
/** USER_HZ: the unit of /proc/PID/stat's times (100 on every Linux architecture Node runs on). */
const CLOCK_TICKS = 100;

/** Counters worth keeping per run: they explain a bad number (loss, retransmissions, drops, GC time). */
const INTERESTING = /retransmit|\.rto$|drop|full|reused|timeout|packets|batches|time-wait|passive-open|challenge|dupack|^gc\./i;

/**
 * The kernel's counters for the TUN interface (client side). `tx.dropped` counts packets
 * the kernel could not queue for netstack (its queue of txqlen packets was full): loss
 * that netstack never sees and that only shows up as retransmissions.
 */
async function tunKernelCounters(ctx: Ctx): Promise<Record<string, number>> {
  const r = await run(['ip', '-n', ctx.net.clientNs, '-s', '-j', 'link', 'show', 'dev', ctx.net.tunDev]);
  try {
    const [link] = JSON.parse(r.stdout) as Array<{ stats64?: { rx: Record<string, number>; tx: Record<string, number> } }>;
    const s = link?.stats64;
    if (!s) return {};
    return {
      'kernel.tun.tx.packets': s.tx['packets'] ?? 0,
      'kernel.tun.tx.dropped': s.tx['dropped'] ?? 0,
      'kernel.tun.rx.packets': s.rx['packets'] ?? 0,
      'kernel.tun.rx.dropped': s.rx['dropped'] ?? 0,
    };
  } catch {
    return {};
  }
}

function counterDelta(before: Message, after: Message): Record<string, number> {
  const a = (before['stats'] ?? {}) as Record<string, number>;
  const b = (after['stats'] ?? {}) as Record<string, number>;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) {
    const d = v - (a[k] ?? 0);
    if (d !== 0 && INTERESTING.test(k)) out[k] = d;
  }
  return out;
}

// ───────────────────────── workloads ─────────────────────────

interface WorkloadSpec {
  id: string;
  title: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Measured against the kernel peer too. */
  kernel: boolean;
  target?: Target;
  note?: string;
}

/** An empty result to fill round by round. */
function workload(spec: WorkloadSpec): WorkloadResult {
  const { kernel, target, note, ...rest } = spec;
  return {
    ...rest,
    netstack: emptySide(),
    ...(kernel ? { kernel: emptySide() } : {}),
    ...(target ? { target: { ...target, met: null } } : {}),
    ...(note ? { note } : {}),
  };
}

/** Bulk transfer over the TUN with virtio-net offloads, both ways (was 1.5 before offloads). */
const GBPS_TUN_TARGET: Target = { of: 'netstack', op: '>=', value: 5, text: '≥ 5 Gbit/s' };
const RATE_TARGET: Target = { of: 'ratio', op: '>=', value: 0.5, text: '≥ 0.5 × kernel' };
/** The request path against the C references: lwIP's keep-alive rate, nginx's connection rate. */
const KEEPALIVE_SMALL_TARGET: Target = { of: 'ratio', versus: 'lwip', op: '>=', value: 1.0, text: '≥ 1.0 × lwIP' };
const NEWCONN_SMALL_TARGET: Target = { of: 'ratio', versus: 'nginx', op: '>=', value: 0.75, text: '≥ 0.75 × nginx' };
/** Under loss, netstack should keep roughly its loss-free ratio to the kernel (loss costs it no more). */
const LOSS_TARGET: Target = { of: 'ratio', op: '>=', value: 0.15, text: '≥ 0.15 × kernel' };
const LOSS = 0.02;
const LOSS_BYTES = quick ? 16 << 20 : 50 << 20;

/**
 * Random loss of what the client namespace receives, from netstack (the TUN) and from the kernel
 * peer (the veth): iptables `statistic` in its INPUT chain. The veth pair's offloads are turned
 * off so the kernel peer's segments are MSS-sized, like netstack's (a dropped 64 KB GSO packet
 * would be a burst of losses). Only data is lost: a locally generated packet (the client's ACKs)
 * dropped in OUTPUT is not lost, the kernel just sends it again. Returns the undo.
 */
async function randomDataLoss(net: BenchNet, p: number): Promise<() => Promise<void>> {
  const offloads = ['tso', 'gso', 'gro'];
  const toggle = (on: boolean) =>
    Promise.all([
      run(net.inNs(net.kernelNs, ['ethtool', '-K', net.vethKernel, ...offloads.flatMap((o) => [o, on ? 'on' : 'off'])])),
      run(net.inNs(net.clientNs, ['ethtool', '-K', net.vethClient, ...offloads.flatMap((o) => [o, on ? 'on' : 'off'])])),
    ]);
  const rule = (dev: string) => ['INPUT', '-i', dev, '-m', 'statistic', '--mode', 'random', '--probability', String(p), '-j', 'DROP'];
  await toggle(false);
  for (const dev of [net.tunDev, net.vethClient]) await runOk(net.inNs(net.clientNs, ['iptables', '-A', ...rule(dev)]));
  return async () => {
    for (const dev of [net.tunDev, net.vethClient]) await run(net.inNs(net.clientNs, ['iptables', '-D', ...rule(dev)]));
    await toggle(true);
  };
}

/** Record one round of one side: a value, or the reason it failed. */
function record(side: SideResult, round: number, value: number | null, detail: Record<string, unknown>, error?: string): void {
  side.runs[round] = value;
  side.details[round] = detail;
  if (error !== undefined) side.errors[round] = error;
}

async function measure(side: SideResult, round: number, label: string, fn: () => Promise<Sample>): Promise<void> {
  try {
    const s = await fn();
    record(side, round, s.value, s.detail);
    log(`  ${label}: ${fmt(s.value)}`);
  } catch (e) {
    const msg = e instanceof MeasureError ? e.message : String((e as Error).stack ?? e);
    record(side, round, null, {}, msg);
    log(`  ${label}: FAILED: ${msg}`);
  }
}

/** Workloads 1–4 against both servers, alternating netstack and kernel within each round. */
async function runSideBySide(ctx: Ctx, results: WorkloadResult[], lwipBin: string | undefined): Promise<void> {
  const { net } = ctx;
  const servers: Record<Side, { proc: JsonLineProcess; url: string }> = {
    netstack: {
      proc: await startNetstack(ctx, 'http', net.tunDev, net.tunHostCidr, net.netstackAddr),
      url: `http://${net.netstackAddr}`,
    },
    kernel: {
      proc: await startServer(ctx, 'kernel peer', net.kernelNs, 'kernel-peer.js', ['--addr', net.kernelAddr, '--port', '80']),
      url: `http://${net.kernelAddr}`,
    },
  };
  const sides: Side[] = ['netstack', 'kernel'];
  const tap = argv.tap
    ? { proc: await startNetstack(ctx, 'http', TAP_NET.dev, TAP_NET.hostCidr, TAP_NET.addr, true), url: `http://${TAP_NET.addr}` }
    : undefined;
  /** --tap: each workload's twin row `<id>_tap`, netstack on TAP measured in the same rounds. */
  const twins = new Map<WorkloadResult, WorkloadResult>();
  const withTwin = (w: WorkloadResult): WorkloadResult[] => {
    if (!tap) return [w];
    const twin = workload({
      id: `${w.id}_tap`, title: `${w.title}, netstack on TAP`, unit: w.unit, better: w.better, kernel: false,
      note: 'netstack on a TAP device (Ethernet II framing + ARP), measured right after the TUN run of each round',
    });
    twins.set(w, twin);
    return [w, twin];
  };
  const peers = await startPeers(ctx, lwipBin);
  try {
    await checkSameContent(ctx, [servers.netstack.url, servers.kernel.url, ...(tap ? [tap.url] : []), ...[...peers].map(([p, s]) => s.url)], [
      ...[...peers].filter(([p]) => p !== 'node_netstack').map(([, s]) => s.url),
    ]);

    /**
     * The server's CPU time over one measurement: per response for request rates (the number
     * that still means something when the machine is loaded and the rates do not), else in all.
     * User and system apart: the system part is mostly the TUN reads and writes (and, inside a
     * write, the kernel's TCP receive for the client), which every user-space stack pays alike.
     */
    const withCpu = (pid: number | undefined, fn: () => Promise<Sample>) => async (): Promise<Sample> => {
      const before = cpuSeconds(pid);
      const sample = await fn();
      const after = cpuSeconds(pid);
      if (before === undefined || after === undefined) return sample;
      const user = after.user - before.user;
      const system = after.system - before.system;
      const responses = sample.detail['requests'];
      const perResponse = (seconds: number) => (seconds * 1e6) / (responses as number);
      const cpu = typeof responses === 'number' && responses > 0
        ? {
            serverCpuSeconds: user + system,
            serverCpuMicrosPerResponse: perResponse(user + system),
            serverUserMicrosPerResponse: perResponse(user),
            serverSystemMicrosPerResponse: perResponse(system),
          }
        : { serverCpuSeconds: user + system, serverUserSeconds: user, serverSystemSeconds: system };
      log(
        `    server CPU ${fmt(cpu.serverCpuSeconds)} s` +
          ('serverCpuMicrosPerResponse' in cpu
            ? `, ${fmt(cpu.serverCpuMicrosPerResponse)} µs per response (user ${fmt(cpu.serverUserMicrosPerResponse)}, system ${fmt(cpu.serverSystemMicrosPerResponse)})`
            : ` (user ${fmt(user)}, system ${fmt(system)})`),
      );
      return { ...sample, detail: { ...sample.detail, ...cpu } };
    };

    /**
     * One round of one workload on both sides, netstack first, then the reference servers that
     * serve it. netstack's counters that changed are kept with its result; with --cpu-prof its
     * CPU profile covers just this run.
     */
    const both = async (w: WorkloadResult, round: number, fn: (side: Side | Peer | 'tap', url: string) => Promise<Sample>) => {
      const ns = servers.netstack.proc;
      for (const side of sides) {
        const before = side === 'netstack' ? await ns.request('stats', 'stats') : undefined;
        const tunBefore = before ? await tunKernelCounters(ctx) : {};
        if (before && ctx.profileDir) await ns.request('prof-start', 'profiling');
        await measure(w[side]!, round, `${w.id} round ${round + 1} ${side}`, withCpu(servers[side].proc.child.pid, () => fn(side, servers[side].url)));
        if (before) {
          if (ctx.profileDir) await ns.request(`prof-stop ${join(ctx.profileDir, `${w.id}-r${round + 1}.cpuprofile`)}`, 'profiled', 60_000);
          const after = await ns.request('stats', 'stats');
          const tunAfter = await tunKernelCounters(ctx);
          (w.netstack.details[round] ??= {})['counters'] = counterDelta(
            { stats: { ...(before['stats'] as object), ...tunBefore } },
            { stats: { ...(after['stats'] as object), ...tunAfter } },
          );
        }
      }
      for (const p of PEER_WORKLOADS[w.id as WorkloadId] ?? []) {
        const peer = peers.get(p);
        if (!peer) continue;
        const side = ((w.peers ??= {})[p] ??= emptySide());
        await measure(side, round, `${w.id} round ${round + 1} ${PEER_LABELS[p]}`, withCpu(peer.pid, () => fn(p, peer.url)));
      }
      const twin = twins.get(w);
      if (tap && twin) {
        // Netstack on TAP after the kernel's run; netstack on TUN came first in the round.
        const before = await tap.proc.request('stats', 'stats');
        await measure(twin.netstack, round, `${w.id} round ${round + 1} netstack TAP`, () => fn('tap', tap.url));
        const after = await tap.proc.request('stats', 'stats');
        (twin.netstack.details[round] ??= {})['counters'] = counterDelta(before, after);
      }
    };

    if (only.has('bulk_download')) {
      const w = workload({
        id: 'bulk_download', title: `bulk GET /bytes/${mib(P.downloadBytes)} (curl)`, unit: 'Gbit/s', better: 'higher', kernel: true,
        target: GBPS_TUN_TARGET,
      });
      results.push(...withTwin(w));
      for (let r = 0; r < rounds; r++) {
        await both(w, r, (_s, url) => curlDownload(net.clientNs, CLIENT_CPU, `${url}/bytes/${P.downloadBytes}`, P.downloadBytes, 180));
      }
    }
    if (only.has('bulk_upload')) {
      const w = workload({
        id: 'bulk_upload', title: `bulk POST ${mib(P.uploadBytes)} to /sink (one Node client)`, unit: 'Gbit/s', better: 'higher', kernel: true,
        target: GBPS_TUN_TARGET,
      });
      results.push(...withTwin(w));
      for (let r = 0; r < rounds; r++) {
        await both(w, r, (_s, url) => clientUpload(net.clientNs, CLIENT_CPU, join(ctx.workDir, 'bench-upload-client.js'), url, P.uploadBytes, 180));
      }
    }
    if (only.has('bulk_download_loss')) {
      const w = workload({
        id: 'bulk_download_loss', title: `bulk GET /bytes/${mib(LOSS_BYTES)} (curl), ${LOSS * 100}% random loss of the data`,
        unit: 'Mbit/s', better: 'higher', kernel: true, target: LOSS_TARGET,
      });
      results.push(w);
      const undo = await randomDataLoss(net, LOSS);
      // MSS-sized segments from netstack too: a lost 64 KiB super-segment would be a burst of losses.
      await servers.netstack.proc.request('offload off', 'offload');
      try {
        for (let r = 0; r < rounds; r++) {
          await both(w, r, async (_s, url) => {
            const sample = await curlDownload(net.clientNs, CLIENT_CPU, `${url}/bytes/${LOSS_BYTES}`, LOSS_BYTES, 300);
            return { ...sample, value: sample.value * 1000 }; // Gbit/s -> Mbit/s
          });
        }
      } finally {
        await servers.netstack.proc.request('offload on', 'offload');
        await undo();
      }
    }
    // Request rates (workloads 2 and 3) on `/`, the status page. Its size grows with the
    // connections it lists, so the same two also run on a small fixed response.
    const rateWorkloads: Array<{ id: WorkloadId; path: string; close: boolean; seconds: number }> = [
      { id: 'keepalive', path: '/', close: false, seconds: P.wrkSeconds },
      { id: 'newconn', path: '/', close: true, seconds: P.wrkSeconds },
      { id: 'keepalive_small', path: `/bytes/${SMALL_BYTES}`, close: false, seconds: P.wrkSmallSeconds },
      { id: 'newconn_small', path: `/bytes/${SMALL_BYTES}`, close: true, seconds: P.wrkSmallSeconds },
    ];
    for (const { id, path, close, seconds } of rateWorkloads) {
      if (!only.has(id)) continue;
      const w = workload({
        id,
        title: `${close ? 'new connections' : 'keep-alive'} GET ${path} (wrk -t1 -c${WRK_CONNECTIONS} -d${seconds}s${close ? ', Connection: close' : ''})`,
        unit: 'req/s', better: 'higher', kernel: true,
        target: id === 'keepalive_small' ? KEEPALIVE_SMALL_TARGET : id === 'newconn_small' ? NEWCONN_SMALL_TARGET : RATE_TARGET,
      });
      // Workload 4, latency: p50 and p99 of the keep-alive runs on `/`.
      const lat = id !== 'keepalive' ? undefined : [
        workload({ id: 'latency_p50', title: 'latency p50 (keep-alive GET / run)', unit: 'ms', better: 'lower', kernel: true }),
        workload({ id: 'latency_p99', title: 'latency p99 (keep-alive GET / run)', unit: 'ms', better: 'lower', kernel: true }),
      ];
      results.push(...withTwin(w), ...(lat ?? []));
      for (let r = 0; r < rounds; r++) {
        await both(w, r, async (side, url) => {
          const res = await wrk(net.clientNs, CLIENT_CPU, `${url}${path}`, { connections: WRK_CONNECTIONS, seconds, close });
          const errs = res.errors.connect + res.errors.read + res.errors.write + res.errors.timeout;
          if (lat && (side === 'netstack' || side === 'kernel')) {
            record(lat[0]![side]!, r, res.p50, {});
            record(lat[1]![side]!, r, res.p99, {});
          }
          log(`  ${side}: ${res.requests} responses of ${fmt(res.bytesPerResponse / 1024)} KiB on average, p50 ${fmt(res.p50)} ms, p99 ${fmt(res.p99)} ms`);
          if (errs > 0 || res.non2xx > 0) log(`  note: ${side}: socket errors ${JSON.stringify(res.errors)}, non-2xx ${res.non2xx}`);
          return { value: res.requestsPerSecond, detail: { ...res } };
        });
      }
    }
  } finally {
    await Promise.all([...sides.map((s) => servers[s].proc.stop()), tap?.proc.stop(), ...[...peers.values()].map((p) => p.stop())]);
  }
}

const UPSTREAM_PORTS = [8001, 8002, 8003];

/**
 * netstack's reverse proxy vs Debian's nginx: the same upstream block (three Node servers in
 * the client namespace, listening on every address: netstack reaches them over its TUN, nginx
 * over the veth pair), 1 nginx worker, both on the server core. The "kernel" column is nginx.
 */
async function runProxy(ctx: Ctx, results: WorkloadResult[]): Promise<void> {
  const { net, workDir } = ctx;
  const tunHost = net.tunHostCidr.split('/')[0]!;
  const block = (host: string) =>
    `upstream app {\n${UPSTREAM_PORTS.map((p) => `    server ${host}:${p};`).join('\n')}\n    keepalive 32;\n}\n`;
  const netstackConf = join(workDir, 'proxy.conf');
  writeFileSync(netstackConf, `${block(tunHost)}server {\n    listen 80;\n    location / { proxy_pass http://app; }\n}\n`);
  const nginxDir = join(workDir, 'nginx');
  mkdirSync(nginxDir, { recursive: true });
  const nginxConf = join(nginxDir, 'nginx.conf');
  writeFileSync(
    nginxConf,
    [
      'worker_processes 1;', 'daemon off;', 'master_process off;', 'user root;', `pid ${nginxDir}/nginx.pid;`, `error_log ${nginxDir}/error.log warn;`,
      'events { worker_connections 4096; }',
      'http {', '  access_log off;', block(net.vethClientAddr),
      `  server { listen ${net.kernelAddr}:80; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
      '}', '',
    ].join('\n'),
  );
  const upstreams: JsonLineProcess[] = [];
  let nginx: ReturnType<typeof spawnTracked> | undefined;
  let netstack: JsonLineProcess | undefined;
  try {
    for (const port of UPSTREAM_PORTS) {
      const p = new JsonLineProcess(`upstream :${port}`, pinned(net.clientNs, CLIENT_CPU, [process.execPath, join(workDir, 'kernel-peer.js'), '--addr', '0.0.0.0', '--port', String(port)]), ctx.env);
      upstreams.push(p);
      await p.waitFor('ready', 20_000);
    }
    netstack = await startServer(ctx, 'netstack (proxy)', net.clientNs, 'bench-server.js', [
      '--mode', 'proxy', '--config', netstackConf, '--dev', net.tunDev, '--host', net.tunHostCidr, '--addr', net.netstackAddr, '--mtu', String(net.mtu), '--port', '80',
    ]);
    // master_process off: one process, the worker, like netstack's one process.
    nginx = spawnTracked(pinned(net.kernelNs, SERVER_CPU, ['nginx', '-p', nginxDir, '-c', nginxConf]), { stdio: 'ignore' });
    const urls: Record<Side, string> = { netstack: `http://${net.netstackAddr}`, kernel: `http://${net.kernelAddr}` };
    for (const side of ['netstack', 'kernel'] as Side[]) {
      let ok = false;
      for (let i = 0; i < 100 && !ok; i++) {
        const r = await run(net.inNs(net.clientNs, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', `${urls[side]}/bytes/${SMALL_BYTES}`]));
        ok = r.stdout === '200';
        if (!ok) await sleep(100);
      }
      if (!ok) throw new Error(`the ${side === 'kernel' ? 'nginx' : 'netstack'} proxy never answered 200 (see ${nginxDir}/error.log)`);
    }
    for (const { id, close } of [
      { id: 'proxy_keepalive' as const, close: false },
      { id: 'proxy_newconn' as const, close: true },
    ]) {
      if (!only.has(id)) continue;
      const w = workload({
        id,
        title: `proxy to 3 upstreams, ${close ? 'new client connections' : 'keep-alive'} GET /bytes/${SMALL_BYTES} (wrk -c${WRK_CONNECTIONS}${close ? ', Connection: close' : ''}); kernel column = nginx`,
        unit: 'req/s', better: 'higher', kernel: true,
        ...(close ? {} : { target: { of: 'ratio', op: '>=', value: 0.5, text: '≥ 0.5 × nginx' } as Target }),
      });
      results.push(w);
      for (let r = 0; r < rounds; r++) {
        for (const side of ['netstack', 'kernel'] as Side[]) {
          const profile = side === 'netstack' && ctx.profileDir !== undefined;
          if (profile) await netstack!.request('prof-start', 'profiling');
          await measure(w[side]!, r, `${id} round ${r + 1} ${side === 'kernel' ? 'nginx' : 'netstack'}`, async () => {
            const res = await wrk(net.clientNs, CLIENT_CPU, `${urls[side]}/bytes/${SMALL_BYTES}`, { connections: WRK_CONNECTIONS, seconds: P.wrkSmallSeconds, close });
            const errs = res.errors.connect + res.errors.read + res.errors.write + res.errors.timeout;
            if (errs > 0 || res.non2xx > 0) throw new MeasureError(`${errs} socket errors, ${res.non2xx} non-2xx responses`);
            return { value: res.requestsPerSecond, detail: { ...res } };
          });
          if (profile) await netstack!.request(`prof-stop ${join(ctx.profileDir!, `${id}-r${r + 1}.cpuprofile`)}`, 'profiled', 60_000);
        }
      }
    }
  } finally {
    await netstack?.stop();
    if (nginx && nginx.exitCode === null) {
      nginx.kill('SIGTERM');
      await new Promise((resolve) => (nginx!.exitCode !== null ? resolve(null) : nginx!.once('exit', resolve)));
    }
    await Promise.all(upstreams.map((u) => u.stop()));
  }
}

/** The /bytes/N every server must serve identically before anything is measured. */
const SMOKE_BYTES = 100_000;

/** Every server must serve the same bytes, or the comparison means nothing (`noPage`: servers without the status page). */
async function checkSameContent(ctx: Ctx, urls: string[], noPage: string[] = []): Promise<void> {
  const n = SMOKE_BYTES;
  const expected = Buffer.alloc(n);
  for (let i = 0; i < n; i++) expected[i] = i & 0xff;
  const file = join(ctx.workDir, 'smoke.bin');
  for (const url of urls) {
    rmSync(file, { force: true });
    const r = await run(pinned(ctx.net.clientNs, CLIENT_CPU, ['curl', '-sS', '--max-time', '20', '-o', file, `${url}/bytes/${n}`]), { timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`smoke test: curl ${url}/bytes/${n} failed: ${r.stderr.trim()}`);
    if (!readFileSync(file).equals(expected)) throw new Error(`smoke test: ${url}/bytes/${n} did not return the i mod 256 pattern`);
    if (noPage.includes(url)) {
      log(`bench: ${url}/bytes/${n} is the pattern`);
      continue;
    }
    const page = await run(pinned(ctx.net.clientNs, CLIENT_CPU, ['curl', '-sS', '--max-time', '20', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', `${url}/`]));
    const [code, size] = page.stdout.trim().split(' ');
    if (code !== '200') throw new Error(`smoke test: GET ${url}/ answered ${code}: ${page.stderr.trim()}`);
    log(`bench: ${url}/bytes/${n} is the pattern; GET ${url}/ is ${size} bytes`);
  }
}

/** Workload 5: two stacks over a MemoryLink in one process, pinned to the server core (memory_offload:
 *  with emulated virtio-net offloads, 64 KiB super-segments with partial checksums). */
async function runMemory(ctx: Ctx, results: WorkloadResult[], offload = false): Promise<void> {
  const w = workload({
    id: offload ? 'memory_offload' : 'memory',
    title: `in-memory: 2 stacks over MemoryLink, ${mib(P.memoryBytes)} one way, MTU ${ctx.net.mtu}${offload ? ', offload (64 KiB super-segments)' : ''}`,
    unit: 'Gbit/s', better: 'higher', kernel: false,
    target: offload ? { of: 'netstack', op: '>=', value: 8, text: '≥ 8 Gbit/s' } : { of: 'netstack', op: '>=', value: 2, text: '≥ 2 Gbit/s' },
    note: offload
      ? 'no kernel and no device: both links do offload, so segments pass whole and checksums are left to the (emulated) device'
      : 'no kernel and no device: IPv4 + TCP with checksums, both ends in one process',
  });
  results.push(w);
  for (let r = 0; r < rounds; r++) {
    await measure(w.netstack, r, `${w.id} round ${r + 1}`, async () => {
      const prof = ctx.profileDir ? ['--cpu-prof', '--cpu-prof-dir', ctx.profileDir, '--cpu-prof-name', `${w.id}-r${r + 1}.cpuprofile`] : [];
      const m = await runWorker(ctx, 'bench-memory', [...prof], [String(P.memoryBytes), String(ctx.net.mtu), offload ? 'on' : 'off'], 90_000);
      if (typeof m['gbps'] !== 'number') throw new MeasureError(`bench-memory: no result in ${JSON.stringify(m)}`);
      return { value: m['gbps'], detail: m };
    });
  }
}

/**
 * Workload 6: N idle established connections held by a fresh netstack process (its own
 * TUN, nsbench1), opened by a Node client in the client namespace. Memory per connection
 * = (after − before) / N, both after a full GC, `after` once the server has idled; RSS and V8 heap reported.
 */
async function runScale(ctx: Ctx, results: WorkloadResult[]): Promise<void> {
  const n = P.scaleConnections;
  const w = workload({
    id: 'scale_rss', title: `scale: ${n} idle connections, RSS per connection`, unit: 'KiB', better: 'lower', kernel: false,
    target: { of: 'netstack', op: '<=', value: 4, text: '≤ 4 KiB' },
    note: 'process RSS after − before, / connections, after a full GC',
  });
  const burst = workload({
    id: 'scale_rss_burst', title: `scale: ${n} idle connections, RSS per connection right after the handshakes`, unit: 'KiB', better: 'lower', kernel: false,
    note: 'as scale_rss, measured at once: includes the young generation V8 grew during the burst (up to 32 MiB, newSpace in the JSON)',
  });
  const heap = workload({ id: 'scale_heap', title: `scale: ${n} idle connections, JS heap per connection`, unit: 'KiB', better: 'lower', kernel: false });
  const rate = workload({
    id: 'scale_connect_rate', title: `scale: connections established per second (${n}, 200 in flight)`, unit: 'conn/s', better: 'higher', kernel: false,
  });
  results.push(w, burst, heap, rate);
  const dev = 'nsbench1';
  const hostCidr = '10.201.3.1/24';
  const addr = '10.201.3.2';
  for (let r = 0; r < rounds; r++) {
    const label = `scale round ${r + 1}`;
    let server: JsonLineProcess | undefined;
    let client: JsonLineProcess | undefined;
    try {
      server = await startNetstack(ctx, 'hold', dev, hostCidr, addr);
      const before = (await server.request('mem', 'mem'))['mem'] as Record<string, number>;
      client = new JsonLineProcess(
        'scale client',
        ['ip', 'netns', 'exec', ctx.net.clientNs, 'prlimit', `--nofile=${n + 10_000}`, 'taskset', '-c', String(CLIENT_CPU),
          process.execPath, join(ctx.workDir, 'bench-scale-client.js'), addr, '80', String(n), '200'],
        ctx.env,
      );
      const opened = await client.waitFor('established', 180_000);
      const established = opened['established'] as number;
      // Let the last handshakes land in the accept queue and be accepted, then idle a moment.
      let count: Message = {};
      for (let i = 0; i < 100; i++) {
        count = await server.request('count', 'count');
        if ((count['count'] as number) >= established) break;
        await sleep(100);
      }
      // Measured twice. At once (scale_rss_burst): RSS then includes the young generation V8 grew
      // to 32 MiB during the burst of handshakes (it grows it while many new objects survive), a
      // fixed cost of any busy moment, 2.8 KiB "per connection" at 10,000. Then after 15 s idle
      // (scale_rss): the TUN link, quiet for 6-9 s, has asked V8 for the minor GC that gives the
      // young generation back (src/runtime/idle-memory.ts); `newSpace` and `idleCollections` in the
      // JSON say whether it did. (--quick waits 1 s only: too short for that.)
      const atOnce = (await server.request('mem', 'mem'))['mem'] as Record<string, number>;
      const rxBefore = await rxPackets(server);
      await sleep(P.scaleSettleMs);
      // Packets that arrived while the server should have been idle: more than a few hundred
      // keep the link from ever counting as quiet, and `after` then still holds the grown young
      // generation (a previous round's orphaned FINs did that until the drain below).
      const settleRxPackets = (await rxPackets(server)) - rxBefore;
      count = await server.request('count', 'count');
      const after = (await server.request('mem', 'mem'))['mem'] as Record<string, number>;
      const held = count['count'] as number;
      if (held === 0) throw new MeasureError(`netstack holds no connections (client: ${JSON.stringify(opened)})`);
      const detail = { connections: held, established: count['established'], clientReport: opened, before, atOnce, after, settleRxPackets };
      const rssKiB = (after['rss']! - before['rss']!) / held / 1024;
      const heapKiB = (after['heapUsed']! - before['heapUsed']!) / held / 1024;
      record(w.netstack, r, rssKiB, detail);
      record(burst.netstack, r, (atOnce['rss']! - before['rss']!) / held / 1024, { connections: held, newSpace: atOnce['newSpace'] });
      record(heap.netstack, r, heapKiB, { connections: held });
      record(rate.netstack, r, established / (opened['seconds'] as number), { seconds: opened['seconds'] });
      log(`  ${label}: ${held} held, RSS ${fmt(rssKiB)} KiB/conn, heap ${fmt(heapKiB)} KiB/conn, ${fmt(established / (opened['seconds'] as number))} conn/s`);
      if (held !== n) log(`  note: asked for ${n} connections, netstack holds ${held} (client: ${JSON.stringify(opened)})`);
    } catch (e) {
      const msg = e instanceof MeasureError ? e.message : String((e as Error).message);
      for (const x of [w, burst, heap, rate]) record(x.netstack, r, null, {}, msg);
      log(`  ${label}: FAILED: ${msg}`);
    } finally {
      await client?.stop();
      // The client's 10,000 sockets close as it exits: their FINs must be answered before the
      // server goes, or the kernel keeps retransmitting them for a minute to the same address,
      // where the next round's server answers each with a RST and never goes quiet.
      if (server) await drainClosing(ctx, addr);
      await server?.stop();
    }
  }
}

/** The server's received-packet count (the TUN link's). */
async function rxPackets(server: JsonLineProcess): Promise<number> {
  const stats = (await server.request('stats', 'stats'))['stats'] as Record<string, number>;
  return stats['tun.rxPackets'] ?? 0;
}

/** Wait (at most 10 s) until no client-namespace socket to `addr` still has a FIN unanswered. */
async function drainClosing(ctx: Ctx, addr: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await run(['ip', 'netns', 'exec', ctx.net.clientNs, 'ss', '-Htn', 'state', 'fin-wait-1', 'state', 'closing', 'state', 'last-ack', 'dst', addr]);
    if (r.stdout.trim() === '') return;
    await sleep(100);
  }
  log(`  note: client sockets to ${addr} still closing after 10 s`);
}

/**
 * Run an in-process worker (scripts/<name>.ts, compiled into the work directory) on the server
 * core and return the JSON line it reports last; a worker that reports `error` or prints no JSON
 * fails the measurement with its words.
 */
async function runWorker(ctx: Ctx, name: string, nodeArgs: string[], args: string[], timeoutMs: number): Promise<Record<string, unknown>> {
  const res = await run(['taskset', '-c', String(SERVER_CPU), process.execPath, ...nodeArgs, join(ctx.workDir, `${name}.js`), ...args], { timeoutMs, env: ctx.env });
  const line = res.stdout.trim().split('\n').at(-1) ?? '';
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new MeasureError(`${name}: exit ${res.code}: ${res.stderr.trim().slice(-1000)}`);
  }
  if (typeof m['error'] === 'string') throw new MeasureError(`${name}: ${m['error']}`);
  return m;
}

/**
 * Workload "timewait": connections that end in TIME-WAIT on the side that closed first (a web
 * server), in one process over a MemoryLink on a virtual clock (scripts/bench-timewait.ts): the
 * heap each TIME-WAIT entry holds for its 60 s, and the connection rate with the GC time it costs.
 */
async function runTimewait(ctx: Ctx, results: WorkloadResult[]): Promise<void> {
  const n = P.timewaitConnections;
  const heap = workload({
    id: 'timewait_heap', title: `TIME-WAIT: JS heap per connection (${n} closed by the server first, in-memory)`, unit: 'bytes', better: 'lower', kernel: false,
    note: 'heap with all of them in TIME-WAIT minus heap once 2·MSL freed them, after a full GC, / TIME-WAIT entries',
  });
  const rate = workload({
    id: 'timewait_rate', title: `TIME-WAIT: ${n} request/close connections in-memory, both stacks in one process`, unit: 'conn/s', better: 'higher', kernel: false,
  });
  results.push(heap, rate);
  for (let r = 0; r < rounds; r++) {
    await measure(heap.netstack, r, `timewait round ${r + 1}`, async () => {
      const m = await runWorker(ctx, 'bench-timewait', ['--expose-gc'], [String(n)], 120_000);
      if (typeof m['bytesPerTimeWait'] !== 'number') throw new MeasureError(`bench-timewait: no result in ${JSON.stringify(m)}`);
      record(rate.netstack, r, m['connPerSec'] as number, { seconds: m['seconds'], gcMs: m['gcMs'] });
      return { value: m['bytesPerTimeWait'], detail: m };
    });
  }
}

/** Resident set size and its high-water mark (VmHWM) of a process, bytes. */
function procRss(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/**
 * Workload 7, "hoarders": N clients POST `hoardBytes` each to /echo and never read the echo,
 * against a fresh server on each side (netstack on its own TUN, nsbench1; Node on the kernel).
 * RSS growth at its peak (VmHWM − RSS before) and once the clients have reset their
 * connections and the server has had 2 s and a full GC (RSS after − RSS before).
 */
async function runHoarders(ctx: Ctx, results: WorkloadResult[]): Promise<void> {
  const n = P.hoarders;
  const peak = workload({
    id: 'hoarders_peak', title: `hoarders: ${n} clients POST ${mib(P.hoardBytes)} to /echo and never read: RSS growth at peak`,
    unit: 'MiB', better: 'lower', kernel: true,
    target: { of: 'netstack', op: '<=', value: 256, text: '≤ 256 MiB (500 clients)' },
    note: 'VmHWM − RSS before; the kernel side is Node on kernel sockets (kernel buffers are not in its RSS)',
  });
  const after = workload({
    id: 'hoarders_after', title: `hoarders: RSS growth after the ${n} clients are gone`, unit: 'MiB', better: 'lower', kernel: true,
    note: 'RSS 2 s after every client reset its connection, after a full GC, − RSS before',
  });
  results.push(peak, after);
  const dev = 'nsbench1';
  const hostCidr = '10.201.3.1/24';
  const addr = '10.201.3.2';
  const sides: Side[] = ['netstack', 'kernel'];
  for (let r = 0; r < rounds; r++) {
    for (const side of sides) {
      const label = `hoarders round ${r + 1} ${side}`;
      let server: JsonLineProcess | undefined;
      let client: JsonLineProcess | undefined;
      try {
        server =
          side === 'netstack'
            ? await startNetstack(ctx, 'http', dev, hostCidr, addr)
            : await startServer(ctx, 'kernel peer', ctx.net.kernelNs, 'kernel-peer.js', ['--addr', ctx.net.kernelAddr, '--port', '80'], ['--expose-gc']);
        // `ip netns exec` and taskset exec the server: the child's pid is node's.
        const serverPid = server.child.pid!;
        const before = ((await server.request('mem', 'mem'))['mem'] as Record<string, number>)['rss']!;
        client = new JsonLineProcess(
          'hoarders client',
          ['ip', 'netns', 'exec', ctx.net.clientNs, 'prlimit', `--nofile=${n + 1000}`, 'taskset', '-c', String(CLIENT_CPU),
            process.execPath, join(ctx.workDir, 'bench-hoarders-client.js'), side === 'netstack' ? addr : ctx.net.kernelAddr, '80',
            String(n), String(P.hoardBytes), String(P.hoardSeconds)],
          ctx.env,
        );
        const hoarding = (await client.waitFor('hoarding', 120_000))['hoarding'] as Record<string, number>;
        const atPeak = procRss(serverPid);
        await client.request('quit', 'gone');
        await client.stop();
        client = undefined;
        await sleep(2000);
        // Two full GCs, then a moment, then the measurement (after more GCs): what the server does
        // after a GC (netstack gives freed buffers back to the system then) is done by the second.
        await server.request('mem', 'mem');
        await sleep(500);
        const end = (await server.request('mem', 'mem'))['mem'] as Record<string, number>;
        const peakMiB = (atPeak.hwm - before) / 2 ** 20;
        const afterMiB = (end['rss']! - before) / 2 ** 20;
        const detail = { clients: n, hoarding, rssBefore: before, vmHwm: atPeak.hwm, rssAtHold: atPeak.rss, rssAfter: end['rss'] };
        record(peak[side]!, r, peakMiB, detail);
        // What the RSS left is made of: V8 heap, young generation, Buffers outside the heap.
        const stats = side === 'netstack' ? (await server.request('stats', 'stats'))['stats'] : undefined;
        record(after[side]!, r, afterMiB, { end, stats });
        log(`  ${label}: ${hoarding['connected']} clients sent ${fmt(hoarding['bytesSent']! / 2 ** 20)} MiB; RSS +${fmt(peakMiB)} MiB at peak, +${fmt(afterMiB)} MiB after`);
      } catch (e) {
        const msg = e instanceof MeasureError ? e.message : String((e as Error).message);
        record(peak[side]!, r, null, {}, msg);
        record(after[side]!, r, null, {}, msg);
        log(`  ${label}: FAILED: ${msg}`);
      } finally {
        await client?.stop();
        await server?.stop();
      }
    }
  }
}

// ───────────────────────── main ─────────────────────────

function mib(bytes: number): string {
  return bytes >= 1 << 30 ? `${bytes / (1 << 30)} GiB` : `${bytes / (1 << 20)} MiB`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** 1, 5 and 15-minute load averages when the bench started. */
const loadAtStart = loadavg().map((x) => Math.round(x * 100) / 100);

function describeEnv(): Record<string, unknown> {
  const out = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '';
  };
  const commit = out('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = out('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src']) !== '';
  return {
    node: process.version,
    kernel: release(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores,
    commit: `${commit}${dirty ? ' (src modified)' : ''}`,
    curl: out('curl', ['--version']),
    wrk: out('wrk', ['-v']),
    pinning: {
      servers: `core ${SERVER_CPU} (netstack bench-server and the Node kernel peer, each while it is measured)`,
      loadGenerators: `core ${CLIENT_CPU} (curl, wrk, the scale client)`,
      note: 'taskset pins processes; the kernel work of a packet (softirq) mostly runs on the core of the process that sent it',
    },
    links: 'netstack: TUN, MTU 1500, virtio-net offloads on (IFF_VNET_HDR + TSO/CSUM: up to 64 KiB super-segments both ways; bench-server --offload off for the old path); kernel peer: veth, MTU 1500, default offloads (TSO/GRO: the kernel moves up to 64 KiB per skb)',
    ...(argv.tap ? { tapLink: 'netstack (the _tap rows): TAP, MTU 1500, Ethernet II + ARP, no offloads' } : {}),
    sizes: { ...P, wrkConnections: WRK_CONNECTIONS },
    // Other work on the machine skews everything: compare runs only at similar load.
    loadAverageAtStart: loadAtStart,
    loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

async function main(): Promise<void> {
  preflight();
  if (loadAtStart[0]! > 0.5) {
    log(`bench: warning: load average ${loadAtStart.join(' ')}: other work is running, the numbers will be noisy`);
  }
  if (argv.build) build();
  const t0 = performance.now();
  const workDir = mkdtempSync(join(tmpdir(), 'netstack-bench-'));
  onCleanup(`remove ${workDir}`, () => rmSync(workDir, { recursive: true, force: true }));
  transpileWorkers(workDir);

  const profileDir = argv['cpu-prof'] ? resolve(argv['cpu-prof']) : undefined;
  if (profileDir) {
    mkdirSync(profileDir, { recursive: true });
    log(`bench: CPU profiles of netstack's measured runs go to ${profileDir} (<workload>-r<round>.cpuprofile)`);
  }

  const net = await createBenchNet();
  const ctx: Ctx = { net, workDir, env: { ...process.env, NETSTACK_DIST: DIST, NETSTACK_TRACE: '0' }, profileDir };
  log(`bench: namespaces ${net.clientNs} (clients, netstack on TUN ${net.tunDev} ${net.netstackAddr}) and ${net.kernelNs} (kernel peer ${net.kernelAddr}, veth)`);
  log(`bench: servers pinned to core ${SERVER_CPU}, load generators to core ${CLIENT_CPU} (taskset); ${rounds} round${rounds === 1 ? '' : 's'}${quick ? ', quick' : ''}`);

  const results: WorkloadResult[] = [];
  if (WORKLOADS.some((id) => !OWN_RUNNER.includes(id) && only.has(id))) {
    let lwipBin: string | undefined;
    if (peersWanted.has('lwip') && [...only].some((id) => PEER_WORKLOADS[id]?.includes('lwip'))) {
      const built = await buildLwip(workDir);
      if ('error' in built) log(`bench: ${PEER_LABELS.lwip} left out: ${built.error}`);
      else lwipBin = built.bin;
    }
    await runSideBySide(ctx, results, lwipBin);
  }
  if (only.has('proxy_keepalive') || only.has('proxy_newconn')) await runProxy(ctx, results);
  if (only.has('memory')) await runMemory(ctx, results);
  if (only.has('memory_offload')) await runMemory(ctx, results, true);
  if (only.has('scale')) await runScale(ctx, results);
  if (only.has('timewait')) await runTimewait(ctx, results);
  if (only.has('hoarders')) await runHoarders(ctx, results);
  net.destroy();

  const result: BenchResult = {
    date: new Date().toISOString(),
    quick,
    rounds,
    durationSeconds: Math.round((performance.now() - t0) / 100) / 10,
    env: describeEnv(),
    workloads: results.map(finish),
  };
  const outFile = resolve(argv.out ?? join(ROOT, 'bench/results', `${result.date.slice(0, 10)}${quick ? '-quick' : ''}.json`));
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);

  process.stdout.write(
    `\nnetstack vs Linux kernel: ${rounds} round${rounds === 1 ? '' : 's'}, median (min–max); ` +
      `servers pinned to core ${SERVER_CPU}, load generators to core ${CLIENT_CPU} (taskset)\n\n` +
      `${renderTable(result)}\n\nJSON: ${outFile}\n`,
  );
}

main()
  .catch((e: Error) => {
    process.stderr.write(`bench: ${e.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    cleanupNow();
  });
