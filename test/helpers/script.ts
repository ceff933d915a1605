/**
 * Segment scripts in the style of packetdrill: ONE netstack Stack on a virtual clock, and the
 * test playing the peer by hand. Each step is a line of a TCP timeline:
 *
 *   const h = scriptHost({ tcp: { delayedAckMs: 40 } });
 *   h.listen();
 *   await script(h)
 *     .recv('S 0:0(0) win 65535 <mss 1460>')      // peer -> stack
 *     .send('S. 0:0(0) ack 1 <mss 1460>')         // stack -> peer, at this instant
 *     .recv('. 1:1(0) ack 1')
 *     .recv('P. 1:101(100) ack 1')
 *     .quiet(39)                                   // nothing for 39 ms ...
 *     .after(1).send('. 1:1(0) ack 101');          // ... then the delayed ACK at +40 ms
 *
 * Line syntax (tcpdump's): `FLAGS START:END(LEN) [ack N] [win N] [<opts>]`
 *   FLAGS  letters S F R P U E W and '.' for ACK, e.g. "S.", "P.", "F.", "R", "R."
 *   START  relative sequence number: `recv` lines count from the peer's ISN, `send` lines from
 *          the stack's ISN (learned from its SYN; 0 before it has sent one). `ack` counts from
 *          the other side's ISN. Like packetdrill, the SYN is at 0 and the first data byte at 1.
 *   win    the raw 16-bit window field. In a `recv` line it defaults to 65535; in a `send`
 *          line it is checked only when given.
 *   <opts> mss N, wscale N, sackOK, TS val N ecr N, sack L:R L:R..., nop (ignored). In a `send`
 *          line, no `<...>` means "no options"; `<*>` means "don't check". The stack's timestamp
 *          clock is relative too: its first SYN or SYN-ACK carries `TS val 0`, and values count
 *          milliseconds from there (`TS val` in `send` lines, `ecr` in `recv` lines); the peer's
 *          own values are absolute. SACK blocks count from the ISN of the side whose data they
 *          cover (the stack's in `recv` lines, the peer's in `send` lines).
 *
 * Data the peer sends is a fixed function of its relative sequence number (`peerBytes`), so a
 * test can check exactly which bytes reached the application, in what order.
 *
 * A `send` line must match the next segment the stack sent, at the current virtual time; a
 * script ends by checking that nothing unexpected is left. A mismatch throws with the expected
 * and actual lines, the seed and the transcript so far, so a failure reads like a trace.
 */
import { parseIpv4 as parseAddr } from '../../src/ip/addr.js';
import { ICMP_HEADER_LEN, writeIcmp } from '../../src/ip/icmp.js';
import { IPV4_HEADER_LEN, PROTO_ICMP, PROTO_TCP, parseIpv4, writeIpv4Header } from '../../src/ip/ipv4.js';
import { MemoryLink } from '../../src/link/memory.js';
import { VirtualClock } from '../../src/runtime/clock.js';
import { seededRandom } from '../../src/runtime/random.js';
import { Stack } from '../../src/stack.js';
import type { TcpConfig } from '../../src/tcp/config.js';
import type { Connection } from '../../src/tcp/connection.js';
import type { TcpLimits } from '../../src/tcp/limits.js';
import type { TcpOptions, TcpSegment } from '../../src/tcp/segment.js';
import { ACK, CWR, ECE, FIN, PSH, RST, SYN, TCP_HEADER_LEN, URG, formatOptions, optionsLength, parseTcp, writeTcp } from '../../src/tcp/segment.js';
import { DEFAULT_BACKLOG } from '../../src/tcp/listener.js';
import type { TcpServer, TcpSocket } from '../../src/tcp/socket.js';
import type { TcpState } from '../../src/tcp/state.js';

export const STACK_ADDR = '10.0.0.1';
export const PEER_ADDR = '10.0.0.2';
/** A router on the path, the source of the ICMP errors a script injects. */
export const ROUTER_ADDR = '10.0.0.254';

export interface ScriptHostOptions {
  /** Everything random (the peer's ISN, the stack's ISN key and port choice) follows from it. */
  seed?: number;
  /** Link MTU; the stack's MSS is mtu - 40. */
  mtu?: number;
  tcp?: Partial<TcpConfig>;
  /** The stack's caps and rate limits (src/tcp/limits.ts). */
  limits?: Partial<TcpLimits>;
  /** The stack's port: what `listen()` binds and `connect()` uses as local port. Default 8080. */
  localPort?: number;
  /** The scripted peer's port. Default 40000. */
  peerPort?: number;
  /** The scripted peer's absolute ISN. Default: drawn from the seed. */
  peerIsn?: number;
  /** The stack's link does offload (like a TUN with IFF_VNET_HDR): the stack sends super-segments,
   *  which the wire cuts into the MSS-sized segments the peer sees (as tcpdump on the host would). */
  offload?: boolean;
}

/** One packet the stack sent, as the peer saw it. */
export interface Captured {
  /** Virtual time of transmission. */
  at: number;
  /** Undefined for a non-TCP packet (e.g. ICMP); `raw` describes it then. */
  seg: TcpSegment | undefined;
  raw: string;
  /** The stack's ISN and the peer's ISN when it was sent (for relative numbering). */
  ourIsn: number;
  peerIsn: number;
  /** The stack's TSval in its SYN (relative timestamps). */
  ourTs0?: number;
}

/** What happened to the socket a script watches (accepted or connected). */
export interface SocketLog {
  socket: TcpSocket;
  /** Data the application received, in order. */
  data: Buffer[];
  /** 'connect', 'end', 'finish', 'close', 'error ECONNRESET', ... in the order they happened. */
  events: string[];
}

/** The stack under test, its clock, and the peer's end of the wire. */
export class ScriptHost {
  readonly seed: number;
  readonly clock: VirtualClock;
  readonly stack: Stack;
  readonly localPort: number;
  /** The scripted peer's port. A script may change it (`do`) to play a second client of the same host. */
  peerPort: number;
  readonly peerIsn: number;
  /** The stack's current ISN; 0 until it sends a SYN (every new SYN rebases it). */
  ourIsn = 0;
  /** The stack's TSval in its latest SYN or SYN-ACK: `TS val 0` in relative lines. */
  ourTs0 = 0;
  /** Every ISN the stack has used, in order. */
  readonly ourIsns: number[] = [];
  /** Every packet the stack sent. */
  readonly out: Captured[] = [];
  /** Index of the first packet in `out` no `send` line has consumed yet. */
  consumed = 0;
  readonly transcript: string[] = [];
  /** Sockets the application holds, newest last. */
  readonly sockets: SocketLog[] = [];
  server: TcpServer | undefined;
  readonly start: number;
  /** The script step now running, for failure messages. */
  step = '';
  private readonly wire: MemoryLink;
  private readonly stackAddr: number;
  private readonly peerAddr: number;

  constructor(opts: ScriptHostOptions = {}) {
    this.seed = opts.seed ?? 1;
    const rand = seededRandom(this.seed * 31 + 7);
    this.clock = new VirtualClock(1_000_000);
    this.start = this.clock.now();
    const [stackEnd, peerEnd] = MemoryLink.pair(this.clock, opts.mtu ?? 1500, { offload: [opts.offload ?? false, false] });
    this.wire = peerEnd;
    this.stackAddr = parseAddr(STACK_ADDR)!;
    this.peerAddr = parseAddr(PEER_ADDR)!;
    const secret = new Uint8Array(16);
    for (let i = 0; i < 16; i++) secret[i] = Math.floor(rand() * 256);
    this.stack = new Stack({
      link: stackEnd,
      addr: this.stackAddr,
      clock: this.clock,
      isnSecret: secret,
      random: seededRandom(this.seed * 31 + 11),
      tcp: opts.tcp,
      limits: opts.limits,
      name: 'stack',
    });
    this.localPort = opts.localPort ?? 8080;
    this.peerPort = opts.peerPort ?? 40000;
    this.peerIsn = (opts.peerIsn ?? Math.floor(rand() * 2 ** 32)) >>> 0;
    peerEnd.onReceive((batch) => {
      for (const p of batch) this.capture(p);
    });
  }

  /** Milliseconds since the script started. */
  get elapsed(): number {
    return this.clock.now() - this.start;
  }

  /** Listen on `localPort`; every accepted socket is logged in `sockets` (data collected unless `read: false`). */
  listen(
    opts: { read?: boolean; allowHalfOpen?: boolean; backlog?: number; highWaterMark?: number; onConnection?: (s: TcpSocket) => void } = {},
  ): TcpServer {
    const server = this.stack.createServer({ allowHalfOpen: opts.allowHalfOpen, highWaterMark: opts.highWaterMark }, (s) => {
      this.watch(s, opts.read ?? true);
      opts.onConnection?.(s);
    });
    server.listen(this.localPort, opts.backlog ?? DEFAULT_BACKLOG);
    this.server = server;
    return server;
  }

  /** Active open from `localPort` to the peer. */
  connect(opts: { allowHalfOpen?: boolean } = {}): TcpSocket {
    const s = this.stack.connect({ host: PEER_ADDR, port: this.peerPort, localPort: this.localPort, allowHalfOpen: opts.allowHalfOpen });
    this.watch(s, true);
    return s;
  }

  /** The newest application socket. */
  get socket(): TcpSocket {
    const log = this.sockets[this.sockets.length - 1];
    if (!log) throw new Error('script: the application has no socket yet');
    return log.socket;
  }

  get log(): SocketLog {
    const log = this.sockets[this.sockets.length - 1];
    if (!log) throw new Error('script: the application has no socket yet');
    return log;
  }

  /** Everything the newest socket's application has read so far. */
  get received(): Buffer {
    return Buffer.concat(this.log.data);
  }

  /** The scripted connection's TCB in the stack, if it has one. */
  get conn(): Connection | undefined {
    return this.stack.tcp
      .connectionList()
      .find((c) => c.localPort === this.localPort && c.remotePort === this.peerPort && c.remoteAddr === this.peerAddr);
  }

  /** The scripted connection's state ('CLOSED' when the stack holds no TCB for it). */
  get state(): TcpState | 'CLOSED' {
    return this.conn?.state ?? 'CLOSED';
  }

  /** The bytes the peer sends at relative sequence numbers [from, to). */
  peerBytes(from: number, to: number): Buffer {
    const b = Buffer.allocUnsafe(Math.max(0, to - from));
    for (let i = 0; i < b.length; i++) b[i] = patternByte(from + i);
    return b;
  }

  /** Put one hand-built segment from the peer on the wire (delivered at this instant). */
  inject(line: string): void {
    const p = parseLine(line);
    if (p.ack === undefined && p.flags & ACK) throw new Error(`script: '${line}': an ACK segment needs "ack N"`);
    const payload = this.peerBytes(p.start, p.start + p.len);
    const options: TcpOptions = p.options === '*' ? {} : { ...p.options };
    // Relative numbers in the line: the echo counts from the stack's first TSval, SACK blocks from its ISN.
    if (options.timestamp) options.timestamp = { value: options.timestamp.value, echo: (this.ourTs0 + options.timestamp.echo) >>> 0 };
    if (options.sack) options.sack = options.sack.map(([l, r]): [number, number] => [(this.ourIsn + l) >>> 0, (this.ourIsn + r) >>> 0]);
    const optLen = optionsLength(options);
    const packet = Buffer.alloc(IPV4_HEADER_LEN + TCP_HEADER_LEN + optLen + p.len);
    payload.copy(packet, IPV4_HEADER_LEN + TCP_HEADER_LEN + optLen);
    writeTcp(
      packet,
      IPV4_HEADER_LEN,
      {
        srcPort: this.peerPort,
        dstPort: this.localPort,
        seq: (this.peerIsn + p.start) >>> 0,
        ack: p.flags & ACK ? (this.ourIsn + p.ack!) >>> 0 : 0,
        flags: p.flags,
        window: p.win ?? 65535,
        options,
      },
      p.len,
      this.peerAddr,
      this.stackAddr,
    );
    writeIpv4Header(packet, 0, { totalLength: packet.length, id: 0, df: true, protocol: PROTO_TCP, src: this.peerAddr, dst: this.stackAddr });
    this.transcript.push(`${stamp(this.elapsed)} < ${line}`);
    this.wire.send([packet]);
  }

  /**
   * A router (ROUTER_ADDR) reports an ICMP error about a segment the stack sent: the quote is that
   * segment's IPv4 header (`len` bytes long in all) and the first 8 bytes of its TCP header, ports
   * and sequence number `seq` (relative to the stack's ISN). `mtu` fills the next-hop MTU field.
   */
  injectIcmp(type: number, code: number, q: { seq: number; len?: number; mtu?: number; srcPort?: number }): void {
    const quote = new Uint8Array(IPV4_HEADER_LEN + 8);
    writeIpv4Header(quote, 0, { totalLength: q.len ?? 40, id: 1, df: true, protocol: PROTO_TCP, src: this.stackAddr, dst: this.peerAddr });
    const view = new DataView(quote.buffer);
    view.setUint16(IPV4_HEADER_LEN, q.srcPort ?? this.localPort);
    view.setUint16(IPV4_HEADER_LEN + 2, this.peerPort);
    view.setUint32(IPV4_HEADER_LEN + 4, (this.ourIsn + q.seq) >>> 0);
    const packet = new Uint8Array(IPV4_HEADER_LEN + ICMP_HEADER_LEN + quote.length);
    packet.set(quote, IPV4_HEADER_LEN + ICMP_HEADER_LEN);
    writeIcmp(packet, IPV4_HEADER_LEN, { type, code, restOfHeader: q.mtu ?? 0 }, quote.length);
    writeIpv4Header(packet, 0, { totalLength: packet.length, id: 0, protocol: PROTO_ICMP, src: parseAddr(ROUTER_ADDR)!, dst: this.stackAddr });
    this.transcript.push(`${stamp(this.elapsed)} < ICMP type ${type} code ${code}${q.mtu ? ` mtu ${q.mtu}` : ''} about seq ${q.seq}`);
    this.wire.send([packet]);
  }

  /** Let every event of the current instant run, and Node's event loop settle. */
  settle(): Promise<void> {
    return this.clock.sleep(0);
  }

  /** Packets sent and not yet matched by a `send` line. */
  get unread(): Captured[] {
    return this.out.slice(this.consumed);
  }

  /** `c` as a relative line; `withWindow` false leaves the window out (for comparing with a line that omits it). */
  describe(c: Captured, withWindow = true, withOptions = true): string {
    if (!c.seg) return c.raw;
    return formatRelative(c.seg, c.ourIsn, c.peerIsn, withWindow, withOptions, c.ourTs0 ?? 0);
  }

  /** A failure message with the seed and the transcript. */
  failure(message: string): Error {
    const lines = [
      `tcp script (seed ${this.seed}) at ${stamp(this.elapsed)}, ${this.step}: ${message}`,
      'transcript (< peer to stack, > stack to peer):',
      ...this.transcript.map((l) => '  ' + l),
    ];
    const rest = this.unread;
    if (rest.length > 0) lines.push('sent and not yet expected:', ...rest.map((c) => `  ${stamp(c.at - this.start)} > ${this.describe(c)}`));
    return new Error(lines.join('\n'));
  }

  private watch(socket: TcpSocket, read: boolean): void {
    const log: SocketLog = { socket, data: [], events: [] };
    this.sockets.push(log);
    if (read) socket.on('data', (d: Buffer) => log.data.push(d));
    for (const ev of ['connect', 'end', 'finish', 'close'] as const) socket.on(ev, () => log.events.push(ev));
    socket.on('error', (e: Error & { code?: string }) => log.events.push(`error ${e.code ?? e.message}`));
  }

  private capture(packet: Uint8Array): void {
    const at = this.clock.now();
    const ip = parseIpv4(packet);
    if ('error' in ip) {
      this.record({ at, seg: undefined, raw: `bad IPv4 packet (${ip.error})`, ourIsn: this.ourIsn, peerIsn: this.peerIsn });
      return;
    }
    if (ip.header.protocol !== PROTO_TCP) {
      this.record({ at, seg: undefined, raw: `IP protocol ${ip.header.protocol} packet, ${ip.payload.length} bytes`, ourIsn: this.ourIsn, peerIsn: this.peerIsn });
      return;
    }
    // The stack's checksums must be right: parseTcp verifies them.
    const seg = parseTcp(ip.payload, ip.header.src, ip.header.dst);
    if ('error' in seg) {
      this.record({ at, seg: undefined, raw: `bad TCP segment (${seg.error})`, ourIsn: this.ourIsn, peerIsn: this.peerIsn });
      return;
    }
    if (seg.flags & SYN && seg.seq !== this.ourIsn) {
      this.ourIsn = seg.seq;
      this.ourIsns.push(seg.seq);
      this.ourTs0 = seg.options.timestamp?.value ?? 0;
    }
    const c: Captured = { at, seg, raw: '', ourIsn: this.ourIsn, peerIsn: this.peerIsn, ourTs0: this.ourTs0 };
    if (seg.dstPort !== this.peerPort || seg.srcPort !== this.localPort) c.raw = `ports ${seg.srcPort} > ${seg.dstPort}`;
    this.record(c);
  }

  private record(c: Captured): void {
    this.out.push(c);
    this.transcript.push(`${stamp(c.at - this.start)} > ${this.describe(c)}${c.raw && c.seg ? ` (${c.raw})` : ''}`);
  }
}

/**
 * Switch the scripted peer to another client port of the same host (`.do(asPeer(40001))`).
 * Relative sequence numbers follow the stack's newest SYN-ACK, so each client's ISN is remembered
 * and restored on the way back.
 */
const peerIsns = new WeakMap<ScriptHost, Map<number, number>>();
export const asPeer = (port: number) => (h: ScriptHost): void => {
  const known = peerIsns.get(h) ?? new Map<number, number>();
  peerIsns.set(h, known);
  if (h.ourIsn !== 0) known.set(h.peerPort, h.ourIsn);
  h.peerPort = port;
  const isn = known.get(port);
  if (isn !== undefined) h.ourIsn = isn;
};

/** Charge the stack's memory budget just past its pressure threshold (not its limit), as other connections' buffers would. */
export function memoryPressure(h: ScriptHost): void {
  const m = h.stack.tcp.memory;
  m.charge(m.pressureAt + 1 - m.used);
  if (!m.underPressure) throw new Error('script: the memory budget is not under pressure');
}

export function scriptHost(opts: ScriptHostOptions = {}): ScriptHost {
  return new ScriptHost(opts);
}

type Step = () => Promise<void> | void;

/**
 * A timeline of steps against `host`. Build it with the chainable methods; `await` runs it
 * (it is a thenable). Steps are run in order; time moves only in `after` and `quiet`.
 */
export class Script implements PromiseLike<void> {
  private readonly steps: Array<{ what: string; run: Step }> = [];

  constructor(readonly host: ScriptHost) {}

  /** The peer sends this segment now. */
  recv(line: string): this {
    parseLine(line); // fail early on a typo
    return this.step(`< ${line}`, async () => {
      this.host.inject(line);
      await this.host.settle();
    });
  }

  /** The stack must have sent exactly this segment, at the current virtual time. */
  send(line: string): this {
    const want = parseLine(line);
    return this.step(`> ${line}`, async () => {
      const h = this.host;
      await h.settle();
      const c = h.out[h.consumed];
      if (!c) throw h.failure(`expected\n    > ${line}\nbut the stack sent nothing`);
      h.consumed++;
      const actual = h.describe(c, want.win !== undefined, want.options !== '*');
      const expected = formatExpected(want);
      if (actual !== expected) throw h.failure(`expected\n    > ${expected}\nbut the stack sent\n    > ${actual}`);
      if (c.at !== h.clock.now()) {
        throw h.failure(`> ${expected} was sent at ${stamp(c.at - h.start)}, expected at ${stamp(h.elapsed)}`);
      }
    });
  }

  /** A router sends an ICMP error about the stack's segment at relative `seq` (ScriptHost.injectIcmp). */
  icmp(type: number, code: number, q: { seq: number; len?: number; mtu?: number; srcPort?: number }): this {
    return this.step(`< ICMP ${type}/${code}`, async () => {
      this.host.injectIcmp(type, code, q);
      await this.host.settle();
    });
  }

  /** Let `ms` of virtual time pass (timers fire; what they send is matched by later `send` lines). */
  after(ms: number): this {
    return this.step(`after ${ms} ms`, () => this.host.clock.sleep(ms));
  }

  /** Nothing may be sent now, nor in the next `ms` of virtual time. */
  quiet(ms = 0): this {
    return this.step(`quiet ${ms} ms`, async () => {
      const h = this.host;
      await h.settle();
      if (h.unread.length > 0) throw h.failure('expected silence, but the stack sent something');
      if (ms > 0) await h.clock.sleep(ms);
      if (h.unread.length > 0) throw h.failure(`expected silence for ${ms} ms, but the stack sent something`);
    });
  }

  /** Application code (write, end, pause, destroy ...), then let it take effect. */
  do(fn: (h: ScriptHost) => unknown): this {
    return this.step('app', async () => {
      await fn(this.host);
      await this.host.settle();
    });
  }

  /** The scripted connection is in `state` ('CLOSED': the stack holds no TCB for it). */
  state(state: TcpState): this {
    return this.step(`state ${state}`, async () => {
      await this.host.settle();
      if (this.host.state !== state) throw this.host.failure(`expected state ${state}, the connection is ${this.host.state}`);
    });
  }

  /** Run every step, then check that the stack sent nothing no `send` line expected. */
  async run(): Promise<void> {
    const h = this.host;
    for (let i = 0; i < this.steps.length; i++) {
      h.step = `step ${i + 1} (${this.steps[i]!.what})`;
      await this.steps[i]!.run();
    }
    h.step = 'end of script';
    await h.settle();
    if (h.unread.length > 0) throw h.failure('the script ended, but the stack sent segments no line expected');
  }

  then<R1 = void, R2 = never>(
    onfulfilled?: ((value: void) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.run().then(onfulfilled, onrejected);
  }

  private step(what: string, run: Step): this {
    this.steps.push({ what, run });
    return this;
  }
}

export function script(host: ScriptHost): Script {
  return new Script(host);
}

export interface PassiveOpenLines {
  /** The window of the peer's SYN, and of its final ACK unless `ackWin` says otherwise. Default 65535. */
  win?: number;
  /** Options of the peer's SYN. Default `<mss 1460>`. */
  peerOpts?: string;
  /** The SYN-ACK the stack must send. Default `S. 0:0(0) ack 1 <*>` (options not checked). */
  synAck?: string;
  ackWin?: number;
}

/** The passive-open preamble (the host must be listening): the peer's SYN, our SYN-ACK, the peer's ACK. */
export function passiveOpen(host: ScriptHost, o: PassiveOpenLines = {}): Script {
  const win = o.win ?? 65535;
  return script(host)
    .recv(`S 0:0(0) win ${win} ${o.peerOpts ?? '<mss 1460>'}`)
    .send(o.synAck ?? 'S. 0:0(0) ack 1 <*>')
    .recv(`. 1:1(0) ack 1 win ${o.ackWin ?? win}`);
}

/** Simultaneous open (RFC 9293 §3.5 figure 8): our SYN crosses the peer's, and we answer its SYN
 *  with a SYN-ACK from SYN-RECEIVED. The peer's SYN-ACK, which would complete it, is left to the test. */
export function simultaneousOpen(host: ScriptHost): Script {
  host.connect();
  return script(host)
    .send('S 0:0(0) win 65535 <*>')
    .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
    .send('S. 0:0(0) ack 1 win 65535 <*>');
}

/** Passive open with a Linux-like peer (the host must not be listening yet): timestamps and SACK
 *  agreed, MSS 1460 - 12, a handshake RTT of 20 ms. */
export function openLinuxLike(host: ScriptHost): Script {
  host.listen();
  return script(host)
    .recv('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,nop,wscale 7>')
    .send('S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 0 ecr 1000,wscale 7>')
    .after(20)
    .recv('. 1:1(0) ack 1 win 512 <TS val 1020 ecr 0>');
}

/** Passive open with a peer that offers SACK but not timestamps (the host must not be listening
 *  yet): MSS 1000, a handshake RTT of `rttMs` (so SRTT = rttMs). */
export function openWithSack(host: ScriptHost, rttMs: number): Script {
  host.listen();
  return script(host)
    .recv('S 0:0(0) win 65535 <mss 1000,sackOK>')
    .send('S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK>')
    .after(rttMs)
    .recv('. 1:1(0) ack 1 win 60000');
}

// ===================================================================================
// Lines
// ===================================================================================

export interface ParsedLine {
  flags: number;
  start: number;
  len: number;
  ack: number | undefined;
  win: number | undefined;
  /** '*' = unchecked (send lines only). */
  options: TcpOptions | '*';
}

const FLAG_LETTERS: Array<[string, number]> = [
  ['F', FIN], ['S', SYN], ['R', RST], ['P', PSH], ['.', ACK], ['U', URG], ['E', ECE], ['W', CWR],
];

/** Parse `FLAGS START:END(LEN) [ack N] [win N] [<opts>]`. Throws on anything malformed (a typo in a test). */
export function parseLine(line: string): ParsedLine {
  const m = /^\s*([FSRPUEW.]+)\s+(\d+):(\d+)\((\d+)\)((?:\s+(?:ack|win)\s+\d+)*)\s*(?:<([^>]*)>)?\s*$/.exec(line);
  if (!m) throw new Error(`script: cannot parse segment line '${line}'`);
  let flags = 0;
  for (const ch of m[1]!) {
    const bit = FLAG_LETTERS.find(([l]) => l === ch)![1];
    if (flags & bit) throw new Error(`script: '${line}': flag ${ch} twice`);
    flags |= bit;
  }
  const start = Number(m[2]);
  const end = Number(m[3]);
  const len = Number(m[4]);
  if (end - start !== len) throw new Error(`script: '${line}': ${start}:${end} is not ${len} bytes`);
  let ack: number | undefined;
  let win: number | undefined;
  for (const [, key, value] of (m[5] ?? '').matchAll(/(ack|win)\s+(\d+)/g)) {
    if (key === 'ack') ack = Number(value);
    else win = Number(value);
  }
  if (ack !== undefined && !(flags & ACK)) throw new Error(`script: '${line}': "ack" without the ACK flag '.'`);
  if (flags & ACK && ack === undefined) throw new Error(`script: '${line}': the ACK flag '.' needs "ack N"`);
  const options = m[6] === undefined ? {} : m[6].trim() === '*' ? '*' : parseOptions(m[6], line);
  return { flags, start, len, ack, win, options };
}

function parseOptions(text: string, line: string): TcpOptions {
  const o: TcpOptions = {};
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '' && p !== 'nop')) {
    let m: RegExpExecArray | null;
    if ((m = /^mss (\d+)$/.exec(part))) o.mss = Number(m[1]);
    else if ((m = /^wscale (\d+)$/.exec(part))) o.wscale = Number(m[1]);
    else if (part === 'sackOK') o.sackPermitted = true;
    else if ((m = /^TS val (\d+) ecr (\d+)$/.exec(part))) o.timestamp = { value: Number(m[1]), echo: Number(m[2]) };
    else if ((m = /^sack((?: \d+:\d+)+)$/.exec(part))) o.sack = m[1]!.trim().split(' ').map((b): [number, number] => b.split(':').map(Number) as [number, number]);
    else throw new Error(`script: '${line}': unknown option '${part}'`);
  }
  return o;
}

function flagString(flags: number): string {
  let s = '';
  for (const [letter, bit] of FLAG_LETTERS) if (flags & bit) s += letter;
  return s;
}


/** The canonical text of an expected line (what a matching actual segment formats to). */
function formatExpected(p: ParsedLine): string {
  let s = `${flagString(p.flags)} ${p.start}:${p.start + p.len}(${p.len})`;
  if (p.flags & ACK) s += ` ack ${p.ack}`;
  if (p.win !== undefined) s += ` win ${p.win}`;
  if (p.options !== '*') {
    const opts = formatOptions(p.options);
    if (opts) s += ` <${opts}>`;
  }
  return s;
}

/** A segment the stack sent, numbered relative to the two ISNs. */
function formatRelative(seg: TcpSegment, ourIsn: number, peerIsn: number, withWindow: boolean, withOptions: boolean, ourTs0 = 0): string {
  const start = (seg.seq - ourIsn) >>> 0;
  const len = seg.payload.length;
  let s = `${flagString(seg.flags) || 'none'} ${start}:${start + len}(${len})`;
  if (seg.flags & ACK) s += ` ack ${(seg.ack - peerIsn) >>> 0}`;
  if (withWindow) s += ` win ${seg.window}`;
  if (withOptions) {
    const o: TcpOptions = { ...seg.options };
    if (o.timestamp) o.timestamp = { value: (o.timestamp.value - ourTs0) >>> 0, echo: o.timestamp.echo };
    if (o.sack) o.sack = o.sack.map(([l, r]): [number, number] => [(l - peerIsn) >>> 0, (r - peerIsn) >>> 0]);
    const opts = formatOptions(o);
    if (opts) s += ` <${opts}>`;
  }
  return s;
}

/** The peer's data byte at relative sequence number `r`: a cheap hash, so misplaced bytes show. */
function patternByte(r: number): number {
  return (Math.imul(r >>> 0, 2654435761) >>> 24) & 0xff;
}

function stamp(ms: number): string {
  return `+${ms}ms`;
}

