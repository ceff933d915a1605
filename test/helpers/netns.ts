/**
 * Network-namespace fixtures for interop tests: the Linux kernel in a fresh namespace is
 * the peer of our stack.
 *
 *   ┌──────── test process (root namespace) ────────┐      ┌──── namespace nstest-<pid>-<n> ────┐
 *   │ Stack ◀──▶ TunLink (fd) ══════════════════════╪══════╪══▶ interface DEV  10.x.y.1/24      │
 *   └───────────────────────────────────────────────┘      │    kernel: ping, curl, sockets     │
 *                                                           └────────────────────────────────────┘
 *
 * The TUN device is created here, then moved into the namespace (`ip link set DEV netns NS`);
 * the fd keeps working across the move. The kernel's side (`hostAddr`) lives in the
 * namespace; the stack answers for `stackAddr` in the same subnet. Only addresses in
 * 10.0.0.0/8 inside namespaces we create are ever used, and every namespace is deleted
 * afterwards: after the test (when created inside one), in afterAll (describeInterop),
 * and at process exit as a last resort. Namespaces left by a crashed run are swept on
 * the next run.
 *
 * Commands are spawned with argument arrays, never shell strings.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { afterAll, beforeEach, describe, it, onTestFinished } from 'vitest';
import { formatIpv4, parseCidr, parseIpv4, inSubnet } from '../../src/ip/addr.js';
import { TunLink, loadNativeTun } from '../../src/link/tun.js';

// ───────────────────────── can we run at all? ─────────────────────────

function checkInterop(): { ok: boolean; reason?: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'interop tests need Linux' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'interop tests need root (run `sudo npm test`)' };
  try {
    accessSync('/dev/net/tun', fsConstants.R_OK | fsConstants.W_OK);
  } catch {
    return { ok: false, reason: '/dev/net/tun is missing (modprobe tun, or give the container the device)' };
  }
  const ip = spawnSync('ip', ['-V'], { encoding: 'utf8', timeout: 10_000 });
  if (ip.error || ip.status !== 0) return { ok: false, reason: '`ip` (iproute2) is not installed' };
  try {
    loadNativeTun();
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
  return { ok: true };
}

/** Whether interop tests can run here; `reason` says why not (printed when skipping). */
export const canRunInterop: { ok: boolean; reason?: string } = checkInterop();

// ───────────────────────── running commands ─────────────────────────

export interface ExecResult {
  /** Exit code, or null when killed by a signal (see `signal`). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface ExecOptions {
  /** Kill the command (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Uint8Array;
  env?: NodeJS.ProcessEnv;
}

/** Output kept per stream; a runaway command cannot grow the test's memory past this. */
const MAX_OUTPUT = 8 * 1024 * 1024;

/** Run argv[0] with argv[1..] (no shell), collecting bounded output. Never rejects. */
export function run(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    if (!cmd) throw new Error('run: empty command');
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
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
    const finish = (code: number | null, signal: NodeJS.Signals | null, extra = '') => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + extra,
        timedOut,
      });
    };
    child.on('error', (e) => finish(127, null, String(e)));
    child.on('close', (code, signal) => finish(code, signal));
    child.stdin!.on('error', () => {}); // the command may exit without reading its input
    child.stdin!.end(opts.input ?? '');
  });
}

/** Like run(), but throws with the command's stderr when it does not exit 0. */
export async function runOk(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    throw new Error(`\`${argv.join(' ')}\` failed (code ${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim()}`);
  }
  return r;
}

// ───────────────────────── namespaces ─────────────────────────

export interface Netns {
  /** Namespace name, `nstest-<pid>-<n>`. */
  readonly ns: string;
  /** Run a command inside the namespace (`ip netns exec NS ...`), with a timeout. */
  exec(cmd: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Start a long-running command inside the namespace; the caller owns the process. */
  spawn(cmd: string[], opts?: SpawnOptions): ChildProcess;
  /** Close what we opened and delete the namespace. Idempotent; never throws. */
  cleanup(): Promise<void>;
}

export interface NetnsTun extends Netns {
  /** Our end of the device: give it to a Stack. */
  readonly link: TunLink;
  /** Interface name (the same inside the namespace). */
  readonly dev: string;
  /** The kernel's address on the link, inside the namespace (e.g. "10.23.1.1"). */
  readonly hostAddr: string;
  /** The address the stack should answer for (e.g. "10.23.1.2"). */
  readonly stackAddr: string;
  readonly prefix: number;
}

const NS_PREFIX = 'nstest-';
let counter = 0;
const live = new Set<Netns>();
let exitHookInstalled = false;
let swept = false;

function nsExecArgv(ns: string, cmd: string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...cmd];
}

/** Delete namespaces left behind by test processes that no longer exist. */
async function sweepStale(): Promise<void> {
  if (swept) return;
  swept = true;
  const r = await run(['ip', 'netns', 'list']);
  for (const line of r.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^nstest-(\d+)-\d+$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isAlive(pid)) continue;
    await run(['ip', 'netns', 'del', name]);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: existence check only
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous. Our TUN fds close with the process anyway.
  process.on('exit', () => {
    for (const n of live) spawnSync('ip', ['netns', 'del', n.ns], { timeout: 10_000 });
    live.clear();
  });
}

/** Register cleanup with the running test when there is one (i.e. not in beforeAll). */
function cleanupAfterCurrentTest(n: Netns): void {
  try {
    onTestFinished(() => n.cleanup());
  } catch {
    // Not inside a test: the creator cleans up in afterAll (describeInterop does it), and
    // the exit hook is the last resort.
  }
}

/** A fresh, empty network namespace (loopback up). */
export async function createNetns(): Promise<Netns> {
  if (!canRunInterop.ok) throw new Error(`interop unavailable: ${canRunInterop.reason}`);
  await sweepStale();
  installExitHook();
  const ns = `${NS_PREFIX}${process.pid}-${++counter}`;
  await runOk(['ip', 'netns', 'add', ns]);
  let done: Promise<void> | undefined;
  const netns: Netns = {
    ns,
    exec: (cmd, opts) => run(nsExecArgv(ns, cmd), opts),
    spawn: (cmd, opts) => {
      const [c, ...args] = nsExecArgv(ns, cmd);
      return spawn(c!, args, opts ?? {});
    },
    cleanup: () => {
      done ??= (async () => {
        live.delete(netns);
        await run(['ip', 'netns', 'del', ns]);
      })();
      return done;
    },
  };
  live.add(netns);
  try {
    await runOk(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    await netns.cleanup();
    throw e;
  }
  cleanupAfterCurrentTest(netns);
  return netns;
}

/**
 * A TUN device whose far side is the kernel of a fresh namespace.
 *
 * @param opts.hostCidr the kernel's address and prefix (default: unique `10.x.y.1/24`)
 * @param opts.stackAddr the stack's address (default: host address + 1)
 * @param opts.mtu MTU of the interface (default 1500)
 * @param opts.ipv6 keep IPv6 on the interface (default false: no router solicitations etc.)
 * @param opts.tap a TAP device (Ethernet frames; the stack needs `ethernet`) instead of TUN
 * @param opts.offload open the TUN with virtio-net headers and offloads (default false: plain packets)
 */
export async function createNetnsTun(
  opts: { hostCidr?: string; stackAddr?: string; mtu?: number; ipv6?: boolean; tap?: boolean; offload?: boolean } = {},
): Promise<NetnsTun> {
  const base = await createNetns();
  // This namespace's own number (the counter may have moved on if several are being created).
  const n = Number(base.ns.slice(base.ns.lastIndexOf('-') + 1));
  const hostCidr = opts.hostCidr ?? `10.${(process.pid % 250) + 1}.${(n % 250) + 1}.1/24`;
  const cidr = parseCidr(hostCidr);
  if (!cidr) throw new Error(`bad hostCidr ${hostCidr}`);
  const hostAddr = formatIpv4(cidr.addr);
  const stackAddr = opts.stackAddr ?? formatIpv4((cidr.addr + 1) >>> 0);
  const stackNum = parseIpv4(stackAddr);
  if (stackNum === undefined || !inSubnet(stackNum, cidr.addr, cidr.prefix) || stackNum === cidr.addr) {
    throw new Error(`stackAddr ${stackAddr} must be another address inside ${hostCidr}`);
  }
  if ((cidr.addr >>> 24) !== 10) throw new Error('interop tests only use 10.0.0.0/8');

  // A unique interface name (at most 15 characters): "nst" + pid and counter in base 36.
  const dev = `nst${process.pid.toString(36)}x${n.toString(36)}`;
  let link: TunLink | undefined;
  try {
    link = TunLink.open({ name: dev, mtu: opts.mtu ?? 1500, tap: opts.tap ?? false, offload: opts.offload ?? false });
    await runOk(['ip', 'link', 'set', dev, 'netns', base.ns]);
    // Below 1280 bytes the kernel gives the interface no IPv6 at all: nothing to disable.
    if (!opts.ipv6 && (opts.mtu ?? 1500) >= 1280) {
      await runOk(nsExecArgv(base.ns, ['sysctl', '-q', '-w', `net.ipv6.conf.${dev}.disable_ipv6=1`]));
    }
    await runOk(['ip', '-n', base.ns, 'addr', 'add', hostCidr, 'dev', dev]);
    await runOk(['ip', '-n', base.ns, 'link', 'set', dev, 'up']);
  } catch (e) {
    link?.close();
    await base.cleanup();
    throw e;
  }
  const tunLink = link;
  let done: Promise<void> | undefined;
  const netnsTun: NetnsTun = {
    ...base,
    link: tunLink,
    dev,
    hostAddr,
    stackAddr,
    prefix: cidr.prefix,
    cleanup: () => {
      // Close first: the kernel removes the interface, then the namespace goes.
      done ??= (async () => {
        live.delete(netnsTun);
        tunLink.close();
        await base.cleanup();
      })();
      return done;
    },
  };
  // Track the wrapper (its cleanup closes the link too) instead of the bare namespace.
  live.delete(base);
  live.add(netnsTun);
  cleanupAfterCurrentTest(netnsTun);
  return netnsTun;
}

/** Clean up every namespace this process still has. */
export async function cleanupAll(): Promise<void> {
  await Promise.all([...live].map((n) => n.cleanup()));
}

// ───────────────────────── suites ─────────────────────────

/**
 * `describe` for interop tests. When interop cannot run it prints why and skips — except
 * under CI=true, where missing prerequisites fail the run (they must run in CI).
 * It counts the tests that ran and prints the count in afterAll, so CI output shows the
 * interop suite really ran, and it cleans up every namespace left at the end.
 */
export function describeInterop(name: string, fn: () => void): void {
  if (!canRunInterop.ok) {
    if (process.env.CI) {
      describe(name, () => {
        it('has its prerequisites (CI must run interop tests)', () => {
          throw new Error(`interop tests cannot run: ${canRunInterop.reason}`);
        });
      });
      return;
    }
    console.log(`[interop] skipping "${name}": ${canRunInterop.reason}`);
    describe.skip(name, fn);
    return;
  }
  describe(name, () => {
    let ran = 0;
    beforeEach(() => {
      ran++;
    });
    afterAll(async () => {
      await cleanupAll();
      console.log(`[interop] "${name}": ${ran} interop tests ran against the Linux kernel`);
    });
    fn();
  });
}
