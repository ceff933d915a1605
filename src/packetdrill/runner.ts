/**
 * Runs a packetdrill script against ONE netstack Stack on a virtual clock. The runner plays
 * the remote host: it puts the script's inbound packets on a MemoryLink, matches what the stack
 * sends against the outbound lines, and makes the system calls through a POSIX-like fd table
 * over the stack's public socket API (./sockets.ts).
 *
 * packetdrill's conventions: the stack is 192.168.0.1 (`--local_ip`), the remote 192.0.2.1
 * (`--remote_ip`); bind() takes port 8080 (`--bind_port`), connect() goes to port 8080
 * (`--connect_port`). Sequence numbering: see ./packet.ts. Script time 0 is the first event.
 *
 * Timing: an outbound packet must leave within `--tolerance_usecs` (default 4000 µs) of its
 * line's time; with `--tolerance_percent=P` the tolerance grows to P % of the time since the
 * previous event when that is larger. A blocking call (`a...b`) must return within the
 * tolerance of b; a call written without `...` must not block.
 *
 * Timestamps: TSval and TSecr are mapped between script and live values as packetdrill does
 * (./timestamps.ts): outbound TSval loosely (only with --tcp_ts_tick_usecs), outbound TSecr
 * exactly, an inbound TSecr as the live TSval of the outbound line that showed it.
 *
 * Profiles: `linux` (the default for a script whose shell line runs Linux's defaults.sh) sets
 * what Linux's defaults give where netstack has the knob, SACK and timestamps on included; the
 * `netstack` profile (every other script) is netstack's configuration with SACK and timestamps
 * OFF, because the corpus was written for a stack without them: its SYN and SYN-ACK lines carry
 * neither. A shell line may also hold `sysctl -q net.ipv4.tcp_sack=0` / `tcp_timestamps=0` (or
 * Linux's `set_sysctls.py /proc/sys/net/ipv4/tcp_sack=0`): those are read, never run (below).
 *
 * Stricter than packetdrill in two ways: a packet the stack sent that no line consumed by the
 * end of the script fails it (packetdrill only notices one when a later outbound line differs),
 * and an outbound TSecr is compared (packetdrill compares only the TSval, and only with a tick).
 */
import { parseIpv4 } from '../ip/addr.js';
import { MemoryLink } from '../link/memory.js';
import { VirtualClock } from '../runtime/clock.js';
import { seededRandom } from '../runtime/random.js';
import { Stack } from '../stack.js';
import type { TcpLimits } from '../tcp/limits.js';
import type { Captured, Flow, OutSegment } from './packet.js';
import { TCP_FLAG_BITS, buildIcmpError, buildInbound, decodeOutbound, formatOut, formatSpec, matchOutbound } from './packet.js';
import type { Expr, PacketSpec, Script, ScriptEvent, SyscallSpec } from './parse.js';
import { PacketdrillSyntaxError, parseScript } from './parse.js';
import type { CallResult, TcpSettings } from './sockets.js';
import { ERRNO, FdTable, SETSOCKOPT_NAMES, SYMBOLS, Unsupported } from './sockets.js';
import { TimestampMapping } from './timestamps.js';

export type Profile = 'netstack' | 'linux';

export interface RunOptions {
  /** 'linux': configure the stack as Linux's scripts assume; default: from the script (`defaults.sh`). */
  profile?: Profile;
  /** Seeds the stack's ISN key and port choice. */
  seed?: number;
}

export interface RunResult {
  status: 'pass' | 'fail' | 'skip';
  /** Why it failed or was skipped ('' on a pass). */
  reason: string;
}

/**
 * What `--profile linux` sets where netstack has the knob, so published Linux scripts test
 * behaviour and not configuration: SACK and timestamps on (net.ipv4.tcp_sack=1 and
 * tcp_timestamps=1, Linux's defaults: its SYN-ACK answers `<mss 1460,sackOK,TS val .. ecr ..,nop,wscale 8>`),
 * window scale 8 (what their SYN-ACK lines expect), 5 SYN retries, RTO bounds 200 ms..120 s with
 * a 1 s initial RTO (Linux's TCP_RTO_MIN/MAX, RFC 6298 §2.1), 40 ms delayed ACKs. Linux's initial
 * window of 10 segments is netstack's default (RFC 6928). The shell script (defaults.sh) itself
 * is never run.
 */
export const LINUX_PROFILE: TcpSettings = {
  sack: true,
  timestamps: true,
  wscale: 8,
  synRetries: 5,
  minRto: 200,
  maxRto: 120_000,
  initialRto: 1000,
  delayedAckMs: 40,
};

/**
 * The Linux sysctls a script may set in a shell line (`` `sysctl -q net.ipv4.tcp_syncookies=2` ``),
 * mapped to netstack's limits (src/tcp/limits.ts). They are read before the script runs and set
 * for the whole stack; no other shell command is run.
 */
const LIMIT_SYSCTLS: Record<string, (v: number) => Partial<TcpLimits>> = {
  'net.ipv4.tcp_syncookies': (v) => ({ synCookies: v === 2 ? 'always' : v !== 0 }),
  'net.ipv4.tcp_max_syn_backlog': (v) => ({ maxSynBacklog: v }),
  'net.ipv4.tcp_max_tw_buckets': (v) => ({ maxTimeWait: v }),
  'net.ipv4.tcp_max_orphans': (v) => ({ maxOrphans: v }),
  // Linux: 0 means 8 (tcp_orphan_retries()).
  'net.ipv4.tcp_orphan_retries': (v) => ({ orphanRetries: v === 0 ? 8 : v }),
  'net.ipv4.tcp_invalid_ratelimit': (v) => ({ invalidReplyIntervalMs: v }),
  'net.ipv4.tcp_challenge_ack_limit': (v) => ({ challengeAcksPerSecond: v }),
};

/** The `netstack` profile: netstack's defaults, but without SACK and timestamps (see the top). */
export const NETSTACK_PROFILE: TcpSettings = { sack: false, timestamps: false };

const KNOWN_OPTIONS = new Set([
  'tolerance_usecs', 'tolerance_percent', 'local_ip', 'remote_ip', 'bind_port', 'connect_port', 'mtu', 'ip_version', 'gateway_ip', 'netmask_ip',
  'tcp_ts_tick_usecs', 'tcp_ts_ecr_scaled',
]);

/** The sysctls that choose TCP settings, and the setting each one is (0 is off, anything else on). */
const SYSCTLS: Record<string, 'sack' | 'timestamps'> = { tcp_sack: 'sack', tcp_timestamps: 'timestamps' };

/**
 * What a shell line asks for, read and never run: Linux's defaults.sh (the linux profile) and
 * the sysctls in SYSCTLS, as `sysctl [-q] [-w] net.ipv4.NAME=V` or Linux's
 * `set_sysctls.py /proc/sys/net/ipv4/NAME=V ...`, separated by newlines, `;` or `&&`.
 * Anything else is the reason the script is skipped.
 */
export function readShellLine(command: string): { defaults: boolean; tcp: TcpSettings; limits: Partial<TcpLimits> } | { unsupported: string } {
  const out = { defaults: false, tcp: {} as Record<string, boolean>, limits: {} as Partial<TcpLimits> };
  const set = (name: string, value: string): boolean => {
    const key = SYSCTLS[name];
    const limit = LIMIT_SYSCTLS[`net.ipv4.${name}`];
    if (key) out.tcp[key] = Number(value) !== 0;
    else if (limit) Object.assign(out.limits, limit(Number(value)));
    else return false;
    return true;
  };
  for (const raw of command.replace(/^`|`$/g, '').split(/\n|;|&&/)) {
    const part = raw.trim();
    if (part === '') continue;
    if (/^\S*defaults\.sh$/.test(part)) {
      out.defaults = true;
      continue;
    }
    let m = /^sysctl(?:\s+-[qw]+)*\s+net\.ipv4\.(\w+)=(\d+)$/.exec(part);
    if (m && set(m[1]!, m[2]!)) continue;
    m = /^\S*set_sysctls\.py((?:\s+\/proc\/sys\/net\/ipv4\/\w+=\d+)+)$/.exec(part);
    if (m && [...m[1]!.matchAll(/ipv4\/(\w+)=(\d+)/g)].every((x) => set(x[1]!, x[2]!))) continue;
    return { unsupported: `shell command \`${part}\` (shell lines are never executed; netstack reads only defaults.sh and the sysctls ${[...Object.keys(SYSCTLS), ...Object.keys(LIMIT_SYSCTLS).map((k) => k.slice('net.ipv4.'.length))].join(', ')})` };
  }
  return { defaults: out.defaults, tcp: out.tcp as TcpSettings, limits: out.limits };
}

/** The virtual clock's reading at script time 0 (any value works; nonzero like a real uptime). */
const EPOCH = 1_000_000;

class Failure extends Error {}

export async function runScript(source: string, opts: RunOptions = {}): Promise<RunResult> {
  let script: Script;
  try {
    script = parseScript(source);
  } catch (e) {
    if (e instanceof PacketdrillSyntaxError) return { status: 'fail', reason: `syntax error: ${e.message}` };
    throw e;
  }
  let run: Run | undefined;
  try {
    run = new Run(script, opts);
    run.check();
    await run.execute();
    return { status: 'pass', reason: '' };
  } catch (e) {
    if (e instanceof Unsupported) return { status: 'skip', reason: e.message };
    if (e instanceof Failure) return { status: 'fail', reason: e.message };
    throw e;
  } finally {
    run?.stop();
  }
}

class Run {
  private readonly clock = new VirtualClock(EPOCH);
  private readonly wire: MemoryLink;
  private readonly stackEnd: MemoryLink;
  private stackInstance: Stack | undefined;
  /** The profile's settings, then the shell lines' sysctls. */
  private readonly config: TcpSettings = {};
  /** Set by the script's sysctl lines for src/tcp/limits.ts (readShellLine). */
  private readonly limits: Partial<TcpLimits> = {};
  private ts!: TimestampMapping;
  private tsTickUs = 0;
  private tsEcrScaled = false;
  private readonly fds: FdTable;
  private readonly flow: Flow;
  private readonly out: Captured[] = [];
  private consumed = 0;
  private ourIsn = 0;
  private ipId = 1;
  private tolUs = 4000;
  private tolPercent = 0;
  private prevTime = 0;
  private event: ScriptEvent | undefined;
  private pending: { ev: ScriptEvent; attempt: () => CallResult; check: (r: Exclude<CallResult, 'block'>) => void; end: number } | undefined;
  private readonly seed: number;
  private connectPort = 8080;
  private bindPort = 8080;
  private mtu = 1500;
  private remoteHost = '192.0.2.1';

  constructor(
    private readonly script: Script,
    private readonly opts: RunOptions,
  ) {
    this.seed = opts.seed ?? 1;
    let local = '192.168.0.1';
    for (const o of script.options) {
      if (!KNOWN_OPTIONS.has(o.name)) throw new Unsupported(`option --${o.name}`);
      const num = Number(o.value);
      const need = (ok: boolean) => {
        if (!ok) throw new Failure(`line ${o.line}: --${o.name}=${o.value} is not a valid value`);
      };
      switch (o.name) {
        case 'tolerance_usecs':
          need(Number.isFinite(num) && num >= 0);
          this.tolUs = num;
          break;
        case 'tolerance_percent':
          need(Number.isFinite(num) && num >= 0);
          this.tolPercent = num;
          break;
        case 'local_ip':
          need(parseIpv4(o.value) !== undefined);
          local = o.value;
          break;
        case 'remote_ip':
          need(parseIpv4(o.value) !== undefined);
          this.remoteHost = o.value;
          break;
        case 'bind_port':
          need(Number.isInteger(num) && num > 0 && num < 65536);
          this.bindPort = num;
          break;
        case 'connect_port':
          need(Number.isInteger(num) && num > 0 && num < 65536);
          this.connectPort = num;
          break;
        case 'mtu':
          need(Number.isInteger(num) && num >= 576 && num <= 65535);
          this.mtu = num;
          break;
        case 'ip_version':
          if (o.value !== 'ipv4') throw new Unsupported(`--ip_version=${o.value} (netstack is IPv4 only)`);
          break;
        case 'tcp_ts_tick_usecs':
          need(Number.isFinite(num) && num >= 0);
          this.tsTickUs = num;
          break;
        case 'tcp_ts_ecr_scaled':
          need(o.value === '' || o.value === 'true' || o.value === 'false');
          this.tsEcrScaled = o.value !== 'false';
          break;
        default:
          break; // gateway_ip, netmask_ip: no routing here, nothing to set
      }
    }
    [this.stackEnd, this.wire] = MemoryLink.pair(this.clock, this.mtu);
    this.flow = { localAddr: parseIpv4(local)!, remoteAddr: parseIpv4(this.remoteHost)!, localPort: this.bindPort, remotePort: 47113 };
    this.wire.onReceive((batch) => {
      for (const p of batch) this.capture(p);
    });
    this.ts = new TimestampMapping(this.tsTickUs, this.tsEcrScaled);
    // Shell lines: read (never run) before the first other event; check() skips the rest.
    let defaults = false;
    const sysctls: TcpSettings = {};
    for (const ev of script.events) {
      if (ev.action.type !== 'shell') break;
      const r = readShellLine(ev.action.command);
      if ('unsupported' in r) break;
      defaults ||= r.defaults;
      Object.assign(sysctls, r.tcp);
    }
    const linux = opts.profile === 'linux' || (opts.profile === undefined && defaults);
    Object.assign(this.config, linux ? LINUX_PROFILE : NETSTACK_PROFILE, sysctls);
    this.fds = new FdTable({
      stack: () => this.stack(),
      hasStack: () => this.stackInstance !== undefined,
      config: this.config,
      bindPort: this.bindPort,
      connectPort: this.connectPort,
      remoteHost: this.remoteHost,
      onConnect: () => {
        this.flow.remotePort = this.connectPort;
        this.flow.localPort = 0; // learned from our SYN
      },
    });
  }

  /** Skip before running anything when the script needs what netstack does not have. */
  check(): void {
    let started = false;
    for (const ev of this.script.events) {
      const a = ev.action;
      if (a.type === 'shell') {
        const r = readShellLine(a.command);
        if ('unsupported' in r) throw new Unsupported(`line ${ev.line}: ${r.unsupported}`);
        if (started && Object.keys(r.tcp).length > 0) throw new Unsupported(`line ${ev.line}: a sysctl after the script started (netstack reads them once, before the first event)`);
        Object.assign(this.limits, r.limits);
      } else started = true;
      if (a.type === 'python') throw new Unsupported(`line ${ev.line}: %{ python }% assertions`);
      if (a.type === 'unsupported') throw new Unsupported(`line ${ev.line}: ${a.what}`);
      if (a.type === 'icmp' && a.icmp.dir === 'out') throw new Unsupported(`line ${ev.line}: outbound ICMP lines`);
      if (a.type === 'packet' && a.packet.dir === 'out' && Array.isArray(a.packet.options)) {
        // A line that can only match with an option this run turned off is a configuration mistake: say so.
        const off = (what: string, sysctl: string) =>
          new Failure(`line ${ev.line}: expects ${what}, but this run has ${sysctl}=0 (the netstack profile turns SACK and timestamps off; use --profile linux, or run defaults.sh in the script)`);
        for (const o of a.packet.options) {
          if ((o.kind === 'sackOK' || o.kind === 'sack') && !this.config.sack) throw off(`a ${o.kind} option`, 'net.ipv4.tcp_sack');
          if (o.kind === 'TS' && !this.config.timestamps) throw off('a TS option', 'net.ipv4.tcp_timestamps');
        }
      }
      if (a.type === 'syscall' && !SYSCALLS.has(a.call.name)) throw new Unsupported(`line ${ev.line}: system call ${a.call.name}()`);
    }
  }

  stop(): void {
    this.fds.destroyAll();
    this.stackInstance?.close();
  }

  private stack(): Stack {
    if (!this.stackInstance) {
      const secret = new Uint8Array(16);
      const rand = seededRandom(this.seed * 7919 + 1);
      for (let i = 0; i < 16; i++) secret[i] = Math.floor(rand() * 256);
      this.stackInstance = new Stack({
        link: this.stackEnd,
        addr: this.flow.localAddr,
        clock: this.clock,
        isnSecret: secret,
        random: seededRandom(this.seed * 7919 + 2),
        tcp: { ...this.config },
        limits: { ...this.limits },
        name: 'packetdrill',
      });
    }
    return this.stackInstance;
  }

  /** Script time now, ms. */
  private get now(): number {
    return this.clock.now() - EPOCH;
  }

  private fail(message: string): Failure {
    const ev = this.event;
    return new Failure(ev ? `line ${ev.line} (${secs(ev.time.start)}): ${message}` : message);
  }

  private tolerance(at: number): number {
    return Math.max(this.tolUs / 1000, (this.tolPercent / 100) * Math.max(0, at - this.prevTime));
  }

  async execute(): Promise<void> {
    for (const ev of this.script.events) {
      this.event = ev;
      const a = ev.action;
      if (a.type === 'packet' && a.packet.dir === 'out') await this.expectOutbound(ev, a.packet);
      else {
        await this.advanceTo(ev.time.start);
        if (a.type === 'packet') this.inject(a.packet);
        else if (a.type === 'icmp') this.injectIcmp(a.icmp.type, a.icmp.code, a.icmp.mtu, a.icmp.quoted?.start ?? 0);
        else if (a.type === 'syscall') await this.syscall(ev, a.call);
        await this.settle();
      }
      if (ev.time.kind !== 'any') this.prevTime = ev.time.start;
    }
    this.event = undefined;
    if (this.pending) await this.waitPending();
    await this.settle();
    const left = this.out.slice(this.consumed);
    if (left.length > 0) {
      const c = left[0]!;
      throw this.fail(`the script ended, but the stack sent ${left.length} packet(s) no line expected, first at ${secs(c.at)}: > ${this.describe(c)}`);
    }
  }

  // --- time -----------------------------------------------------------------------------------

  private async settle(): Promise<void> {
    await this.clock.sleep(0);
    this.checkPending();
  }

  /** Run virtual time up to script time `t`, retrying a blocked call at every instant. */
  private async advanceTo(t: number, stopWhen?: () => boolean): Promise<void> {
    const target = EPOCH + t;
    await this.settle();
    for (let i = 0; this.clock.now() < target; i++) {
      if (stopWhen?.()) return;
      if (i > 1_000_000) throw this.fail('the simulation does not converge (over a million steps)');
      let next = Math.min(this.clock.nextAt(), target);
      if (this.pending) next = Math.min(next, EPOCH + this.pending.end + this.tolerance(this.pending.end));
      await this.clock.sleep(Math.max(0, next - this.clock.now()));
      this.checkPending();
    }
  }

  // --- packets --------------------------------------------------------------------------------

  private capture(packet: Uint8Array): void {
    const c = decodeOutbound(packet, this.now);
    const s = c.seg;
    if (s && s.flags & TCP_FLAG_BITS['S']!) {
      // Our SYN or SYN-ACK: its sequence number is the ISN that outbound lines count from.
      this.ourIsn = s.seq;
      if (!(s.flags & TCP_FLAG_BITS['.']!) && this.flow.localPort === 0) this.flow.localPort = s.srcPort;
    }
    this.out.push(c);
  }

  private inject(p: PacketSpec): void {
    if (this.flow.localPort === 0) throw this.fail('an inbound packet before the stack has sent its SYN (its port is not known yet)');
    this.stack();
    this.wire.send([buildInbound(this.liveTsEcr(p), this.flow, this.ourIsn, this.ipId++)]);
  }

  /** An inbound line with ACK and a TS option: its TSecr becomes the live TSval it names (./timestamps.ts). */
  private liveTsEcr(p: PacketSpec): PacketSpec {
    if (!Array.isArray(p.options) || !p.flags.includes('.')) return p;
    const options = p.options.map((o) => {
      if (o.kind !== 'TS') return o;
      const ecr = this.ts.inboundEcr(o.ecr);
      if (typeof ecr !== 'number') throw this.fail(ecr.error);
      return { ...o, ecr };
    });
    return { ...p, options };
  }

  private injectIcmp(type: string, code: string | undefined, mtu: number | undefined, quotedStart: number): void {
    const packet = buildIcmpError(type, code, mtu, (this.ourIsn + quotedStart) >>> 0, this.flow, this.ipId++);
    if (typeof packet === 'string') throw new Unsupported(`${packet} in an inbound ICMP line`);
    this.stack();
    this.wire.send([packet]);
  }

  private describe(c: Captured): string {
    return c.seg ? this.format(c.seg) : (c.other ?? '?');
  }

  private format(seg: OutSegment): string {
    return formatOut(seg, this.ourIsn, (v) => this.ts.toScript(v));
  }

  private async expectOutbound(ev: ScriptEvent, want: PacketSpec): Promise<void> {
    const any = ev.time.kind === 'any';
    const earliest = any ? -Infinity : ev.time.start - this.tolerance(ev.time.start);
    const latestAt = ev.time.kind === 'range' ? ev.time.rangeEnd! : ev.time.start;
    const latest = any ? this.now + 600_000 : latestAt + this.tolerance(latestAt);
    await this.advanceTo(latest, () => this.out.length > this.consumed);
    const first = this.out[this.consumed];
    const expected = `> ${formatSpec(want)}`;
    if (!first) throw this.fail(`expected ${expected}, but the stack sent nothing by ${secs(latest)}`);
    if (!first.seg) throw this.fail(`expected ${expected}, but the stack sent ${first.other} at ${secs(first.at)}`);
    // Segments sent in the same instant may be joined for a line that expects a larger one.
    const segs: OutSegment[] = [];
    for (const c of this.out.slice(this.consumed)) {
      if (c.at !== first.at || !c.seg) break;
      segs.push(c.seg);
    }
    // packetdrill's TSval tolerance counts from the start of the script, not from the last event.
    const tsTolUs = Math.max(this.tolUs, this.tolPercent * 10 * Math.max(0, ev.time.start));
    const r = matchOutbound(want, segs, this.ourIsn, this.flow, (w, g) => this.ts.outbound(w, g, tsTolUs));
    if ('mismatch' in r) throw this.fail(`expected ${expected}, but the stack sent > ${this.format(first.seg)} at ${secs(first.at)} (${r.mismatch})`);
    if (first.at < earliest || first.at > latest) {
      throw this.fail(`${expected} was sent at ${secs(first.at)}, expected at ${any ? 'any time' : secs(ev.time.start)}${ev.time.kind === 'range' ? `~${secs(latestAt)}` : ''} (tolerance ${secs(this.tolerance(ev.time.start))})`);
    }
    this.consumed += r.consumed;
  }

  // --- system calls ----------------------------------------------------------------------------

  private async syscall(ev: ScriptEvent, call: SyscallSpec): Promise<void> {
    if (this.pending) throw this.fail(`a system call while the blocking ${this.pending.ev.text.trim()} (line ${this.pending.ev.line}) has not returned`);
    const { attempt, check } = this.prepare(call);
    // Let every socket's stream take what TCP holds and notice an EOF before the call looks.
    this.fds.primeAll();
    await this.settle();
    const first = attempt();
    await this.settle();
    const end = ev.time.blockingEnd ?? ev.time.start;
    if (first !== 'block') {
      this.completed(ev, end, first, check);
      return;
    }
    if (ev.time.blockingEnd === undefined) {
      // Maybe it only needed the event loop to turn (e.g. EOF noticed).
      const again = attempt();
      if (again !== 'block') {
        this.completed(ev, end, again, check);
        return;
      }
      throw this.fail(`${call.name}() blocked; write it as a blocking call (e.g. +0...0.1 ${call.name}(...)) or make the socket non-blocking`);
    }
    this.pending = { ev, attempt, check, end };
    this.checkPending();
  }

  private completed(ev: ScriptEvent, end: number, r: Exclude<CallResult, 'block'>, check: (r: Exclude<CallResult, 'block'>) => void): void {
    const saved = this.event;
    this.event = ev;
    const tol = this.tolerance(end);
    if (Math.abs(this.now - end) > tol + 1e-9) {
      throw this.fail(`${ev.text.replace(/^\S+\s+/, '')} returned at ${secs(this.now)}, expected at ${secs(end)} (tolerance ${secs(tol)})`);
    }
    check(r);
    this.event = saved;
  }

  private checkPending(): void {
    const p = this.pending;
    if (!p) return;
    const r = p.attempt();
    if (r !== 'block') {
      this.pending = undefined;
      this.completed(p.ev, p.end, r, p.check);
      return;
    }
    if (this.now >= p.end + this.tolerance(p.end) - 1e-9) {
      this.event = p.ev;
      throw this.fail(`${p.ev.text.replace(/^\S+\s+/, '')} had not returned by ${secs(this.now)}`);
    }
  }

  private async waitPending(): Promise<void> {
    const p = this.pending!;
    await this.advanceTo(p.end + this.tolerance(p.end) + 0.001, () => this.pending === undefined);
    this.checkPending();
  }

  /** The attempt function for a call, and the check of its result against the script. */
  private prepare(call: SyscallSpec): { attempt: () => CallResult; check: (r: Exclude<CallResult, 'block'>) => void } {
    const a = call.args;
    const fdArg = () => this.int(a[0], 'the fd');
    const want = call.result;
    const check = (r: Exclude<CallResult, 'block'>, outs?: Array<[Expr | undefined, string]>) => {
      const got = r.errno ? `-1 ${r.errno}` : String(r.ret);
      const expected = call.errno ? `-1 ${call.errno}` : want.t === 'ellipsis' ? got : String(this.int(want, 'the result'));
      if (call.errno && ERRNO[call.errno] === undefined) throw new Unsupported(`errno ${call.errno}`);
      const same = call.errno && r.errno ? ERRNO[call.errno] === ERRNO[r.errno] : got === expected;
      if (!same) throw this.fail(`${call.name}() returned ${got}, expected ${expected}`);
      for (const [expr, key] of outs ?? []) {
        const value = r.out?.[key];
        if (!expr || expr.t === 'ellipsis' || value === undefined) continue;
        const inner = expr.t === 'array' ? expr.items[0] : expr;
        if (!inner || inner.t === 'ellipsis') continue;
        const w = this.int(inner, `${call.name}()'s output`);
        if (w !== value) throw this.fail(`${call.name}() gave ${value}, expected ${w}`);
      }
    };
    const plain = (attempt: () => CallResult) => ({ attempt, check: (r: Exclude<CallResult, 'block'>) => check(r) });
    switch (call.name) {
      case 'socket':
        return plain(() => this.fds.socket(this.optInt(a[0]), this.optInt(a[1])));
      case 'bind':
        return plain(() => this.fds.bind(fdArg()));
      case 'listen':
        return plain(() => this.fds.listen(fdArg(), this.optInt(a[1]) ?? 128));
      case 'accept':
      case 'accept4':
        return plain(() => this.fds.accept(fdArg()));
      case 'connect': {
        let started = false;
        return plain(() => {
          const r = this.fds.connect(fdArg(), started);
          started = true;
          return r;
        });
      }
      case 'read':
      case 'recv':
      case 'recvfrom': {
        const flags = call.name === 'read' ? 0 : (this.optInt(a[3]) ?? 0);
        return plain(() => {
          this.fds.prime(fdArg());
          return this.fds.read(fdArg(), this.int(a[2], 'the length'), flags);
        });
      }
      case 'readv':
        return plain(() => {
          this.fds.prime(fdArg());
          return this.fds.read(fdArg(), this.iovLen(a[1]));
        });
      case 'write':
      case 'send':
      case 'sendto': {
        const flags = call.name === 'write' ? 0 : (this.optInt(a[3]) ?? 0);
        return plain(() => this.fds.write(fdArg(), this.dataLen(a[1], a[2]), flags));
      }
      case 'writev':
        return plain(() => this.fds.write(fdArg(), this.iovLen(a[1])));
      case 'shutdown':
        return plain(() => this.fds.shutdown(fdArg(), this.int(a[1], 'how')));
      case 'close':
        return plain(() => this.fds.close(fdArg()));
      case 'setsockopt': {
        const name = this.symName(a[2]);
        const level = this.symName(a[1]);
        if (!SETSOCKOPT_NAMES.has(name)) throw new Unsupported(`setsockopt ${level} ${name}`);
        return plain(() => this.fds.setsockopt(fdArg(), level, name, this.optValue(a[3])));
      }
      case 'getsockopt': {
        const name = this.symName(a[2]);
        return { attempt: () => this.fds.getsockopt(fdArg(), name), check: (r) => check(r, [[a[3], 'value']]) };
      }
      case 'fcntl': {
        const cmd = this.symName(a[1]);
        return plain(() => this.fds.fcntl(fdArg(), cmd, this.optInt(a[2]) ?? 0));
      }
      case 'ioctl': {
        const req = this.symName(a[1]);
        if (req !== 'SIOCINQ' && req !== 'FIONREAD') throw new Unsupported(`ioctl ${req}`);
        return {
          attempt: () => {
            this.fds.prime(fdArg());
            return this.fds.inq(fdArg());
          },
          check: (r) => check(r, [[a[2], 'value']]),
        };
      }
      case 'poll':
        return this.preparePoll(call, check);
      default:
        throw new Unsupported(`system call ${call.name}()`);
    }
  }

  private preparePoll(call: SyscallSpec, check: (r: Exclude<CallResult, 'block'>) => void): { attempt: () => CallResult; check: (r: Exclude<CallResult, 'block'>) => void } {
    const list = call.args[0];
    if (!list || list.t !== 'array') throw new Unsupported('poll() without a [{fd=..., events=..., revents=...}] list');
    const entries = list.items.map((item) => {
      if (item.t !== 'struct') throw new Unsupported('poll() entries that are not {fd=..., events=..., revents=...}');
      const field = (n: string) => item.fields.find((f) => f.name === n)?.value;
      return { fd: this.int(field('fd'), 'fd'), events: this.int(field('events'), 'events'), revents: field('revents') };
    });
    const timeout = this.optInt(call.args[2]) ?? -1;
    const deadline = this.now + (timeout < 0 ? Infinity : timeout);
    let last: number[] = [];
    const attempt = (): CallResult => {
      for (const e of entries) this.fds.prime(e.fd);
      last = entries.map((e) => this.fds.revents(e.fd, e.events));
      const ready = last.filter((r) => r !== 0).length;
      if (ready > 0 || this.now >= deadline - 1e-9) return { ret: ready };
      return 'block';
    };
    return {
      attempt,
      check: (r) => {
        check(r);
        entries.forEach((e, i) => {
          if (!e.revents || e.revents.t === 'ellipsis') return;
          const w = this.int(e.revents, 'revents');
          if (w !== last[i]) throw this.fail(`poll() revents for fd ${e.fd} were ${pollNames(last[i]!)}, expected ${pollNames(w)}`);
        });
      },
    };
  }

  // --- expressions -----------------------------------------------------------------------------

  private int(e: Expr | undefined, what: string): number {
    if (!e) throw this.fail(`${what} is missing`);
    switch (e.t) {
      case 'int':
        return e.v;
      case 'sym': {
        const v = SYMBOLS[e.v];
        if (v === undefined) throw new Unsupported(`the symbol ${e.v}`);
        return v;
      }
      case 'or':
        return e.items.reduce((acc, x) => acc | this.int(x, what), 0);
      case 'array':
        if (e.items.length === 1) return this.int(e.items[0], what);
        throw this.fail(`${what}: expected a number, found an array`);
      default:
        throw this.fail(`${what}: expected a number`);
    }
  }

  private optInt(e: Expr | undefined): number | undefined {
    return e === undefined || e.t === 'ellipsis' ? undefined : this.int(e, 'an argument');
  }

  private symName(e: Expr | undefined): string {
    if (e && e.t === 'sym') return e.v;
    throw this.fail('expected a symbolic name such as SOL_SOCKET or SO_RCVBUF');
  }

  private optValue(e: Expr | undefined): number | { onoff: number; linger: number } {
    if (e && e.t === 'struct') {
      const f = (n: string) => this.int(e.fields.find((x) => x.name === n)?.value, n);
      return { onoff: f('l_onoff'), linger: f('l_linger') };
    }
    return this.int(e, 'the option value');
  }

  /** write(fd, ..., N) writes N bytes; a string argument writes the string. */
  private dataLen(buf: Expr | undefined, len: Expr | undefined): number {
    if (buf && buf.t === 'str' && (!len || len.t === 'ellipsis')) return Buffer.byteLength(buf.v);
    return this.int(len, 'the length');
  }

  private iovLen(e: Expr | undefined): number {
    if (!e || e.t !== 'array') throw this.fail('expected an iovec list [{iov_base=..., iov_len=N}, ...]');
    return e.items.reduce((sum, item) => {
      if (item.t !== 'struct') throw this.fail('expected {iov_base=..., iov_len=N}');
      return sum + this.int(item.fields.find((f) => f.name === 'iov_len')?.value, 'iov_len');
    }, 0);
  }
}

const SYSCALLS = new Set([
  'socket', 'bind', 'listen', 'accept', 'accept4', 'connect', 'read', 'recv', 'recvfrom', 'readv', 'write', 'send', 'sendto', 'writev',
  'shutdown', 'close', 'setsockopt', 'getsockopt', 'fcntl', 'ioctl', 'poll',
]);

function pollNames(v: number): string {
  const names = ['POLLIN', 'POLLPRI', 'POLLOUT', 'POLLERR', 'POLLHUP', 'POLLNVAL', 'POLLRDNORM', 'POLLWRNORM', 'POLLRDHUP'].filter((n) => v & SYMBOLS[n]!);
  return names.length ? names.join('|') : '0';
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(6).replace(/0{1,3}$/, '')}s`;
}

export interface FileResult extends RunResult {
  file: string;
}

/** `PASS file`, `FAIL file — reason`, `SKIP file — reason`. */
export function formatResult(r: FileResult): string {
  return r.status === 'pass' ? `PASS ${r.file}` : `${r.status.toUpperCase()} ${r.file} — ${r.reason}`;
}
