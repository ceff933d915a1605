/**
 * Network namespaces for `npm run bench`, and the cleanup that always runs.
 *
 * The topology (every name is unique per bench process; nothing touches the host's own
 * namespace except creating and deleting these two namespaces):
 *
 *   client namespace  "nsbench-<pid>-client"              kernel namespace "nsbench-<pid>-kernel"
 *   ┌───────────────────────────────────────┐             ┌────────────────────────────────┐
 *   │ curl, wrk, scale client  (core 1)     │             │ Node http server   (core 0)    │
 *   │                                       │    veth     │                                │
 *   │ vbench-c 10.201.2.1/24 ───────────────┼─────────────┼── vbench-k 10.201.2.2/24       │
 *   │                                       │             └────────────────────────────────┘
 *   │ nsbench0 10.201.1.1/24  (TUN, host side)
 *   │    ▲ raw IPv4                          │
 *   │    ▼                                   │
 *   │ netstack 10.201.1.2 (bench-server, core 0, its own process in this namespace)
 *   └───────────────────────────────────────┘
 *
 * The TUN device is created by the netstack process itself, which runs inside the client
 * namespace (`ip netns exec`), so the device's kernel side is the client namespace's
 * interface: exactly like `netstack up` on a desktop, minus the host's other traffic.
 * It disappears when that process exits (its fd closes). Deleting a namespace deletes
 * its veth end, and a veth pair dies with either end.
 *
 * Cleanup is synchronous (spawnSync / process.kill) so that it can run from 'exit' and
 * signal handlers: on success, on a thrown error, on SIGINT/SIGTERM/SIGHUP.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';

// ───────────────────────── running commands ─────────────────────────

export interface RunResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Output kept per stream, so a chatty command cannot grow our memory without bound. */
const MAX_OUTPUT = 4 * 1024 * 1024;

/** Run argv[0] with argv[1..] (no shell) and collect its output. Never rejects. */
export function run(argv: readonly string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    if (!cmd) throw new Error('run: empty command');
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    trackChild(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout!.on('data', (b: Buffer) => {
      if (outLen < MAX_OUTPUT) out.push(b);
      outLen += b.length;
    });
    child.stderr!.on('data', (b: Buffer) => {
      if (errLen < MAX_OUTPUT) err.push(b);
      errLen += b.length;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    let settled = false;
    const finish = (code: number | null, extra = '') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + extra,
        timedOut,
      });
    };
    child.on('error', (e) => finish(127, String(e)));
    child.on('close', (code) => finish(code));
  });
}

/** Like run(), but throws with the command's stderr when it does not exit 0. */
export async function runOk(argv: readonly string[], opts?: { timeoutMs?: number }): Promise<RunResult> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    throw new Error(`\`${argv.join(' ')}\` failed (code ${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim()}`);
  }
  return r;
}

/** Whether a command exists on PATH (`which` without a shell). */
export function haveCommand(name: string): boolean {
  const r = spawnSync('which', [name], { encoding: 'utf8', timeout: 5_000 });
  return r.status === 0;
}

// ───────────────────────── cleanup, always ─────────────────────────

/** Child processes we started and that have not exited yet: killed (by pid) on cleanup. */
const children = new Set<ChildProcess>();
/** Synchronous undo actions, run last-in first-out. */
const undo: Array<{ what: string; fn: () => void }> = [];
let hooksInstalled = false;

/** Remember a child so cleanup can kill it if it is still running. */
export function trackChild(child: ChildProcess): void {
  installHooks();
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** Register an undo action (delete a namespace, remove a file). Returns a function that runs it now, once. */
export function onCleanup(what: string, fn: () => void): () => void {
  installHooks();
  const entry = { what, fn };
  undo.push(entry);
  return () => {
    const i = undo.indexOf(entry);
    if (i < 0) return;
    undo.splice(i, 1);
    fn();
  };
}

/** Kill our children and run every undo action. Synchronous and idempotent; never throws. */
export function cleanupNow(): void {
  for (const child of children) {
    // Only processes this script started, by their own pid.
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  while (undo.length > 0) {
    const { what, fn } = undo.pop()!;
    try {
      fn();
    } catch (e) {
      process.stderr.write(`cleanup: ${what} failed: ${(e as Error).message}\n`);
    }
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, cleaning up\n`);
      cleanupNow();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

// ───────────────────────── the bench topology ─────────────────────────

const NS_PREFIX = 'nsbench-';

export interface BenchNet {
  /** Namespace of the load generators and of netstack (with its TUN). */
  readonly clientNs: string;
  /** Namespace of the Node-on-kernel peer. */
  readonly kernelNs: string;
  /** TUN device name inside the client namespace (created by the netstack process). */
  readonly tunDev: string;
  /** The client kernel's address on the TUN link, with prefix: give to the netstack process. */
  readonly tunHostCidr: string;
  /** netstack's address. */
  readonly netstackAddr: string;
  /** The Node-on-kernel peer's address (far end of the veth pair). */
  readonly kernelAddr: string;
  /** The client namespace's end of the veth pair, and its address. */
  readonly vethClient: string;
  readonly vethClientAddr: string;
  readonly vethKernel: string;
  /** MTU of both links (the same, so segment sizes on the wire match). */
  readonly mtu: number;
  /** argv that runs `cmd` inside namespace `ns`. */
  inNs(ns: string, cmd: readonly string[]): string[];
  /** Delete both namespaces (and with them the veth pair). Idempotent. */
  destroy(): void;
}

/** Delete bench namespaces left behind by bench processes that no longer exist. */
export function sweepStaleNamespaces(): void {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 10_000 });
  for (const line of (r.stdout ?? '').split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^nsbench-(\d+)-(client|kernel)$/.exec(name);
    if (!m || Number(m[1]) === process.pid || isAlive(Number(m[1]))) continue;
    spawnSync('ip', ['netns', 'del', name], { timeout: 10_000 });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: an existence check, nothing is sent
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function inNs(ns: string, cmd: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...cmd];
}

/**
 * Create both namespaces and the veth pair between them. The TUN device is not created
 * here (the netstack process does that inside the client namespace). Everything created
 * is registered for cleanup before the next step runs, so a failure half-way leaves nothing.
 */
export async function createBenchNet(opts: { mtu?: number } = {}): Promise<BenchNet> {
  sweepStaleNamespaces();
  const mtu = opts.mtu ?? 1500;
  const clientNs = `${NS_PREFIX}${process.pid}-client`;
  const kernelNs = `${NS_PREFIX}${process.pid}-kernel`;
  const net: BenchNet = {
    clientNs,
    kernelNs,
    tunDev: 'nsbench0',
    tunHostCidr: '10.201.1.1/24',
    netstackAddr: '10.201.1.2',
    kernelAddr: '10.201.2.2',
    vethClient: 'vbench-c',
    vethClientAddr: '10.201.2.1',
    vethKernel: 'vbench-k',
    mtu,
    inNs,
    destroy: () => {
      destroyClient();
      destroyKernel();
    },
  };
  const delNs = (ns: string) => () => {
    spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
  };
  await runOk(['ip', 'netns', 'add', clientNs]);
  const destroyClient = onCleanup(`delete namespace ${clientNs}`, delNs(clientNs));
  await runOk(['ip', 'netns', 'add', kernelNs]);
  const destroyKernel = onCleanup(`delete namespace ${kernelNs}`, delNs(kernelNs));

  for (const ns of [clientNs, kernelNs]) {
    await runOk(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    // No IPv6 chatter (router solicitations, DAD) on the bench links.
    await runOk(inNs(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']));
    await runOk(inNs(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']));
  }
  // Enough ephemeral ports for 10,000 connections and a Connection: close run.
  await runOk(inNs(clientNs, ['sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=10000 65000']));
  // wrk closes its end first on `Connection: close`, so the client side piles up TIME-WAIT
  // sockets (thousands per second, each holding a port for 60 s). Once most ports are
  // taken, connect() in the client spends its time searching for a free one and both
  // servers appear to collapse to ~150 req/s. The usual load-generator setting: no
  // TIME-WAIT in the client namespace (the servers' namespaces keep theirs).
  await runOk(inNs(clientNs, ['sysctl', '-q', '-w', 'net.ipv4.tcp_max_tw_buckets=0']));
  // Both ends are born inside their namespaces: the names never exist in the host namespace.
  await runOk([
    'ip', 'link', 'add', net.vethClient, 'netns', clientNs, 'mtu', String(mtu), 'type', 'veth',
    'peer', 'name', net.vethKernel, 'netns', kernelNs, 'mtu', String(mtu),
  ]);
  await runOk(['ip', '-n', clientNs, 'addr', 'add', `${net.vethClientAddr}/24`, 'dev', net.vethClient]);
  await runOk(['ip', '-n', kernelNs, 'addr', 'add', `${net.kernelAddr}/24`, 'dev', net.vethKernel]);
  await runOk(['ip', '-n', clientNs, 'link', 'set', net.vethClient, 'up']);
  await runOk(['ip', '-n', kernelNs, 'link', 'set', net.vethKernel, 'up']);
  return net;
}

/** Start a long-running process; it is killed by cleanup if still running. */
export function spawnTracked(argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('spawnTracked: empty command');
  const child = spawn(cmd, args, opts);
  trackChild(child);
  return child;
}
