/**
 * A hostile peer at the wire, against the whole receive path of one Stack: IPv4 validation,
 * fragment reassembly, ICMP, UDP, the TCP listener and the connection state machine, with real
 * applications on top (an echo server, a reader that has stopped reading, a server that talks).
 *
 * The project's rule under test (DESIGN.md, "Errors and bad input"): bad input from the wire
 * never crashes the stack and never grows memory without bound; it is dropped (and counted) or
 * answered as the RFC says.
 *
 * For each seed the test plays a peer that is partly a real TCP (it opens connections with a
 * proper handshake, tracks our ISN and the data we send, acknowledges it) and partly a fuzzer:
 * segments with sequence and acknowledgment numbers near the right ones (exact, inside the
 * window, old, ±2^31), every combination of SYN/FIN/RST/URG with and without ACK, payloads from
 * empty to many MSS, zero and huge windows, valid and invalid options, duplicates, reordering,
 * retransmissions; in between virtual time passes and every timer of the stack fires. Around
 * that: malformed IPv4 (checksum, version, IHL, lengths, addresses), fragments (overlapping,
 * oversized, incomplete), ICMP of every type, UDP to bound and unbound ports, unknown protocols,
 * and packets truncated at every length from 0 to 60.
 *
 * Everything the stack sends must be well formed and fit the link. After every step: nothing
 * threw, and every bound holds (connections, receive and send buffers and the number of buffers
 * they take, out-of-order bytes, reassembly memory, the timer heap). At the end, ten quiet
 * minutes later, nothing is left: no connection, no deadline, no socket, no fragment. Every
 * class of malformed packet sent was counted under its drop reason.
 *
 * A failure names the seed, the step, the last packets injected and the last ones the stack sent;
 * NETSTACK_FUZZ_SEED=N replays seed N alone. NETSTACK_SOAK=N runs N times as many seeds.
 */
import { describe, expect, it } from 'vitest';
import type { Ipv4Addr } from '../../src/ip/addr.js';
import { parseIpv4 as parseAddr } from '../../src/ip/addr.js';
import { parseIcmp } from '../../src/ip/icmp.js';
import { IPV4_HEADER_LEN, PROTO_ICMP, PROTO_TCP, PROTO_UDP, parseIpv4 } from '../../src/ip/ipv4.js';
import { MemoryLink } from '../../src/link/memory.js';
import { VirtualClock } from '../../src/runtime/clock.js';
import { seededRandom } from '../../src/runtime/random.js';
import { Stack } from '../../src/stack.js';
import type { TcpConfig } from '../../src/tcp/config.js';
import { RCV_COALESCE_BYTES } from '../../src/tcp/receiver.js';
import type { TcpOptions } from '../../src/tcp/segment.js';
import { ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, parseTcp } from '../../src/tcp/segment.js';
import { seqAdd, seqGt, seqLeq, seqLt, seqSub } from '../../src/tcp/seq.js';
import type { TcpServer, TcpSocket } from '../../src/tcp/socket.js';
import { parseUdp } from '../../src/udp/udp.js';
import { passiveOpen, scriptHost } from '../helpers/script.js';
import type { RawOption } from '../helpers/wire.js';
import { describePacket, fragments, icmp, ipv4, rawOptions, setIpv4Checksum, setTransportChecksum, tcp, udp } from '../helpers/wire.js';

/** NETSTACK_SOAK=10 runs ten times as many seeds (a longer hunt; the default fits CI). */
const SOAK = Math.max(1, Number(process.env['NETSTACK_SOAK'] ?? 1));

const STACK_ADDR = parseAddr('10.0.0.1')!;
const PEER_ADDR = parseAddr('10.0.0.2')!;
/** A second host on the link, for fragments and ICMP that are not about the peer's connections. */
const OTHER_ADDR = parseAddr('10.0.0.3')!;

const PORTS = { echo: 7, paused: 9, talker: 19 } as const;
const BACKLOG = { echo: 16, paused: 4, talker: 8 } as const;
const UDP_PORT = 53;
/** The IP layer's reassembly memory bound (Reassembler's default maxTotalBytes, src/ip/reassembly.ts). */
const REASM_MAX_BYTES = 4 * 1024 * 1024;
/** The peer's own connections come from ports 40000 and up; a SYN flood from 20000-29999. */
const FLOW_PORT_BASE = 40000;
/** Ports on which the peer answers the stack's own connections (its active opens). */
const PEER_SERVER_PORTS = [80, 81, 82];
const MAX_FLOWS = 8;
/** Every server socket is destroyed after this long without a read or a write (an application idle timeout). */
const IDLE_MS = 60_000;
/** The largest single write an application makes here: the send buffer may exceed sndBuf by one write. */
const MAX_WRITE = 65_536;
/** Quiet time at the end: every connection must be gone by then. */
const DRAIN_MS = 600_000;

/**
 * Which counter each deliberately malformed (or deliberately valid) class of packet must move.
 * The test checks counter >= packets sent of that class (a sum, where there are two outcomes).
 */
const EXPECTED_COUNTER: Record<string, string | string[]> = {
  'ip-bad-checksum': 'ip.drop.bad-checksum',
  'ip-bad-version': 'ip.drop.bad-version',
  'ip-bad-ihl': 'ip.drop.bad-ihl',
  'ip-bad-total-length': 'ip.drop.bad-total-length',
  'ip-truncated': 'ip.drop.truncated',
  'not-for-us': 'ip.drop.not-for-us',
  'bad-src': 'ip.drop.bad-src',
  'unknown-protocol': 'ip.drop.unknown-protocol',
  'tcp-bad-checksum': 'tcp.drop.bad-checksum',
  'tcp-bad-option': 'tcp.bad-option', // ignored, not the segment (as Linux)
  'tcp-bad-data-offset': 'tcp.drop.bad-data-offset',
  'tcp-truncated': 'tcp.drop.truncated',
  'tcp-bad-ports': 'tcp.drop.bad-ports',
  'udp-bound': 'udp.delivered',
  'udp-no-port': 'udp.drop.no-port',
  'udp-bad-checksum': 'udp.drop.bad-checksum',
  'udp-bad-length': 'udp.drop.bad-length',
  'udp-truncated': 'udp.drop.truncated',
  'icmp-echo': 'icmp.echo',
  'icmp-bad-checksum': 'icmp.drop.bad-checksum',
  'icmp-truncated': 'icmp.drop.truncated',
  'frag-overlap': 'ip.reasm.overlaps',
  'frag-too-big': 'ip.reasm.dropped-too-big',
  'frag-bad-length': 'ip.reasm.bad-length',
  'frag-inconsistent': 'ip.reasm.inconsistent',
  // Never completed: it times out, unless a flood of fragments pushed it out of memory first.
  'frag-incomplete': ['ip.reasm.timeouts', 'ip.reasm.dropped-memory'],
};

/** A failed check, already described with the seed and the last packets. */
class FuzzFailure extends Error {}

/** Seeded choices. */
class Dice {
  constructor(readonly r: () => number) {}
  /** 0 .. n-1 */
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  /** lo .. hi inclusive */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  u32(): number {
    return Math.floor(this.r() * 2 ** 32) >>> 0;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }
}

/** The peer's view of one of its connections: what a real TCP would track, and no more. */
interface Flow {
  port: number;
  server: number;
  /** The peer's ISN and SND.NXT. */
  iss: number;
  sndNxt: number;
  synAckSeen: boolean;
  /** The peer sent the handshake's final ACK. */
  established: boolean;
  /** The stack sent a RST on this 4-tuple. */
  reset: boolean;
  /** The stack's ISN (from its SYN-ACK) and the peer's RCV.NXT: the next byte expected from the stack. */
  ourIsn: number;
  rcvNxt: number;
  /** The last acknowledgment the stack sent: its RCV.NXT. */
  stackAck: number;
  /** A TSval that keeps growing, for peers that send timestamps. */
  tsVal: number;
  /** The stack sent data or a FIN since the peer last acknowledged. */
  owesAck: boolean;
  /** The stack's FIN has arrived in order. */
  stackFin: boolean;
  /** The peer sent its FIN. */
  finSent: boolean;
  /** The stack opened this connection (the peer plays the server); `port` is the peer's. */
  active: boolean;
  /** The stack's SYN arrived and awaits the peer's answer. */
  synDue: boolean;
}

interface Injected {
  at: number;
  label: string;
  packet: Uint8Array;
}

interface FuzzOutcome {
  packetsIn: number;
  stats: Record<string, number>;
  /** Every state transition seen, as "FROM>TO". */
  states: Set<string>;
}

class WireFuzz {
  readonly dice: Dice;
  readonly clock = new VirtualClock(1_000_000);
  readonly start = this.clock.now();
  readonly stack: Stack;
  readonly config: Partial<TcpConfig> & Pick<TcpConfig, 'rcvBuf' | 'sndBuf' | 'oooMaxBytes'>;
  readonly mtu: number;
  /** The stack's MSS (MTU - 40): the peer sends segments around it. */
  readonly mss: number;
  private readonly wire: MemoryLink;
  private readonly servers: TcpServer[] = [];
  private talker: TcpServer | undefined;
  /** Active opens by the stack's own client application. */
  private connects = 0;
  private readonly sockets: TcpSocket[] = [];
  private readonly flows = new Map<string, Flow>();
  /** 4-tuples (as "server:port") on which the peer sent a SYN: each may hold one connection. */
  private readonly synTuples = new Set<string>();
  private readonly floodPorts = new Set<number>();
  /** Recent TCP packets from the peer, for duplicates. */
  private readonly history: Uint8Array[] = [];
  /** Packets held back, to arrive later and out of order. */
  private held: Injected[] = [];
  private readonly injected: Injected[] = [];
  private readonly output: Array<{ at: number; packet: Uint8Array }> = [];
  /** Packets sent per class of EXPECTED_COUNTER. */
  private readonly classes = new Map<string, number>();
  private readonly states = new Set<string>();
  private step = 0;
  private ipId = 0;
  /** Fragment IDs for the classes whose outcome is checked: never reused, never shared with noise. */
  private uniqueId = 1000;
  private peakConnections = 0;
  private packetsIn = 0;

  constructor(readonly seed: number) {
    this.dice = new Dice(seededRandom(seed * 7919 + 101));
    const d = this.dice;
    // From the smallest link IPv4 allows (68 bytes: 28-byte segments) to jumbo frames.
    this.mtu = d.pick([68, 576, 1500, 1500, 1500, 9000]);
    this.mss = this.mtu - 40;
    // Small buffers, so windows close, out-of-order queues fill and the send buffer pushes back;
    // short retry limits, so a silent peer is given up on within the final quiet minutes.
    this.config = {
      rcvBuf: d.pick([2048, 8192, 65_536]),
      sndBuf: d.pick([4096, 32_768]),
      oooMaxBytes: d.pick([4096, 65_536]),
      wscale: d.pick([0, 2, 7, 14]),
      maxRetries: 4,
      synRetries: 3,
      maxRto: 8000,
      keepaliveInterval: 2000,
      keepaliveCount: 3,
      finWait2Timeout: 20_000,
    };
    const [stackEnd, peerEnd] = MemoryLink.pair(this.clock, this.mtu);
    this.wire = peerEnd;
    const secret = d.bytes(16);
    this.stack = new Stack({
      link: stackEnd,
      addr: STACK_ADDR,
      clock: this.clock,
      isnSecret: secret,
      random: seededRandom(seed * 31 + 5),
      tcp: this.config,
      name: 'fuzzed',
    });
    this.stack.onTransition((e) => this.states.add(`${e.from}>${e.to}`));
    peerEnd.onReceive((batch) => {
      for (const p of batch) this.onOutput(p);
    });
    this.startApplications();
  }

  // ===================================================================================
  // The applications on the stack
  // ===================================================================================

  /** Every socket the applications hold: errors are expected with this peer, and idle ones are closed. */
  private adopt(s: TcpSocket): void {
    this.sockets.push(s);
    s.on('error', () => {}); // ECONNRESET, ETIMEDOUT, ECONNREFUSED, EPIPE
    s.setTimeout(IDLE_MS, () => s.destroy());
  }

  /**
   * Write `chunks` pieces of 4 KiB, honouring backpressure, then end(); sometimes let go of the
   * socket as soon as that is done, leaving the connection to finish its close on its own.
   */
  private talk(s: TcpSocket, chunks: number): void {
    if (this.dice.chance(0.3)) s.once('finish', () => s.destroy());
    const chunk = new Uint8Array(4096).fill(0x61);
    const go = (): void => {
      while (chunks > 0 && s.writable) {
        chunks--;
        if (!s.write(chunk)) {
          s.once('drain', go);
          return;
        }
      }
      if (s.writable) s.end();
    };
    go();
  }

  private startApplications(): void {
    // Echo: everything read is written back (backpressure both ways); keepalive finds a silent peer.
    const echo = this.stack.createServer((s) => {
      this.adopt(s);
      s.setKeepAlive(true, 10_000);
      s.pipe(s);
    });
    echo.listen(PORTS.echo, BACKLOG.echo);
    // A reader that has stopped reading (with a small stream buffer): its window closes and stays closed.
    const paused = this.stack.createServer({ highWaterMark: 1024 }, (s) => {
      this.adopt(s);
      s.pause();
    });
    paused.listen(PORTS.paused, BACKLOG.paused);
    this.servers.push(echo, paused);
    this.startTalker();
    // UDP echo (source port 0 means "no port to answer", RFC 768).
    this.stack.udp.bind(UDP_PORT, (data, rinfo) => {
      if (rinfo.port > 0) this.stack.udp.send(data.slice(), rinfo.port, rinfo.address, UDP_PORT, this.clock.now());
    });
  }

  /** A talker: 64 KiB, then end(); what it receives is discarded. */
  private startTalker(): void {
    const talker = this.stack.createServer((s) => {
      this.adopt(s);
      s.resume();
      this.talk(s, 16);
    });
    talker.listen(PORTS.talker, BACKLOG.talker);
    this.servers.push(talker);
    this.talker = talker;
  }

  // ===================================================================================
  // The wire
  // ===================================================================================

  private inject(label: string, packet: Uint8Array): void {
    this.packetsIn++;
    this.injected.push({ at: this.clock.now(), label, packet });
    if (this.injected.length > 40) this.injected.shift();
    this.wire.send([packet]);
  }

  /** A packet of a class whose drop counter is checked at the end. */
  private injectClass(cls: string, packet: Uint8Array): void {
    this.classes.set(cls, (this.classes.get(cls) ?? 0) + 1);
    this.inject(cls, packet);
  }

  /** Let `ms` of virtual time pass; whatever the stack throws becomes a failure with the seed. */
  private async settle(ms = 0): Promise<void> {
    try {
      await this.clock.sleep(ms);
    } catch (err) {
      if (err instanceof FuzzFailure) throw err; // a check inside a delivery already described it
      throw this.failure('the stack threw', err);
    }
  }

  /** Everything the stack sends: it must be well formed; the peer learns from it like a real TCP. */
  private onOutput(p: Uint8Array): void {
    this.output.push({ at: this.clock.now(), packet: p });
    if (this.output.length > 20) this.output.shift();
    const ip = parseIpv4(p);
    if ('error' in ip) throw this.failure(`the stack sent a malformed IPv4 packet (${ip.error})`);
    const h = ip.header;
    if (p.length > this.mtu) throw this.failure(`the stack sent ${p.length} bytes on a ${this.mtu}-byte link`);
    if (h.src !== STACK_ADDR) throw this.failure('the stack sent a packet from an address not its own');
    if (h.mf || h.fragmentOffset > 0) return;
    if (h.protocol === PROTO_UDP) {
      const d = parseUdp(ip.payload, h.src, h.dst);
      if ('error' in d) throw this.failure(`the stack sent a malformed UDP datagram (${d.error})`);
      return;
    }
    if (h.protocol === PROTO_ICMP) {
      const m = parseIcmp(ip.payload);
      if ('error' in m) throw this.failure(`the stack sent a malformed ICMP message (${m.error})`);
      return;
    }
    if (h.protocol !== PROTO_TCP) throw this.failure(`the stack sent IP protocol ${h.protocol}`);
    const seg = parseTcp(ip.payload, h.src, h.dst);
    if ('error' in seg) throw this.failure(`the stack sent a malformed TCP segment (${seg.error})`);
    if (h.dst !== PEER_ADDR) return;
    if ((seg.flags & (SYN | ACK | RST)) === SYN) return this.onStackSyn(seg.srcPort, seg.dstPort, seg.seq);
    const flow = this.flows.get(`${seg.srcPort}:${seg.dstPort}`);
    if (!flow) return;
    if (seg.flags & RST) {
      flow.reset = true;
      return;
    }
    if ((seg.flags & (SYN | ACK)) === (SYN | ACK)) {
      flow.synAckSeen = true;
      flow.ourIsn = seg.seq;
      flow.rcvNxt = seqAdd(seg.seq, 1);
      flow.stackAck = seg.ack;
      return;
    }
    if (!flow.synAckSeen) return;
    // The peer takes in-order data and FIN; it keeps nothing out of order (the stack retransmits).
    const len = seg.payload.length + (seg.flags & FIN ? 1 : 0);
    if (len > 0 && seqLeq(seg.seq, flow.rcvNxt) && seqLt(flow.rcvNxt, seqAdd(seg.seq, len))) {
      flow.rcvNxt = seqAdd(seg.seq, len);
      if (seg.flags & FIN) flow.stackFin = true;
    }
    if (len > 0) flow.owesAck = true;
    if (seg.flags & ACK) {
      flow.stackAck = seg.ack;
      // The stack holds more than the peer thought it sent (out-of-order data filled in): catch up.
      if (seqGt(seg.ack, flow.sndNxt) && seqSub(seg.ack, flow.sndNxt) < 1 << 24) flow.sndNxt = seg.ack;
    }
  }

  /** The stack's SYN (an active open, or its retransmission): the peer will answer in `respond`. */
  private onStackSyn(stackPort: number, peerPort: number, seq: number): void {
    const key = `${stackPort}:${peerPort}`;
    let flow = this.flows.get(key);
    if (!flow || !flow.active || flow.ourIsn !== seq) {
      flow = {
        port: peerPort,
        server: stackPort,
        iss: this.dice.u32(),
        sndNxt: 0,
        synAckSeen: true,
        established: true, // the peer's side needs no final ACK of its own
        reset: false,
        ourIsn: seq,
        rcvNxt: seqAdd(seq, 1),
        stackAck: 0,
        tsVal: this.dice.u32(),
        owesAck: false,
        stackFin: false,
        finSent: false,
        active: true,
        synDue: true,
      };
      flow.sndNxt = seqAdd(flow.iss, 1);
      this.flows.set(key, flow);
    }
    flow.synDue = true;
  }

  // ===================================================================================
  // Checks
  // ===================================================================================

  failure(what: string, err?: unknown): FuzzFailure {
    const lines = [`wire fuzz seed ${this.seed}, step ${this.step}, t=+${this.clock.now() - this.start}ms: ${what}`];
    if (err !== undefined) lines.push(err instanceof Error ? (err.stack ?? err.message) : String(err));
    lines.push(
      `config: mtu ${this.mtu}, ${JSON.stringify(this.config)}`,
      'last packets injected (oldest first):',
      ...this.injected.map((i) => `  +${i.at - this.start}ms [${i.label}] ${describePacket(i.packet)}`),
      'last packets the stack sent:',
      ...this.output.map((o) => `  +${o.at - this.start}ms ${describePacket(o.packet)}`),
      `replay: NETSTACK_FUZZ_SEED=${this.seed} npx vitest run test/sim/wire-fuzz.test.ts`,
    );
    return new FuzzFailure(lines.join('\n'));
  }

  /** The bounds that must hold at every moment, whatever the peer sends. */
  check(): void {
    const infos = this.stack.connections();
    this.peakConnections = Math.max(this.peakConnections, infos.length);
    const opened = this.synTuples.size + this.connects;
    if (infos.length > opened + BACKLOG.paused) {
      throw this.failure(`${infos.length} connections, but only ${opened} were opened (+ a SYN backlog of ${BACKLOG.paused})`);
    }
    const closed = infos.find((c) => c.state === 'CLOSED');
    if (closed) throw this.failure(`a CLOSED connection is still listed: ${JSON.stringify(closed)}`);
    const conns = this.stack.tcp.connectionList();
    const flood = conns.filter((c) => this.floodPorts.has(c.remotePort)).length;
    if (flood > BACKLOG.paused) throw this.failure(`${flood} half-open connections from a SYN flood, backlog ${BACKLOG.paused}`);
    for (const c of conns) {
      const name = `${c.remotePort}>${c.localPort} ${c.state}`;
      if (c.rcv.oooBytes > this.config.oooMaxBytes) throw this.failure(`${name}: ${c.rcv.oooBytes} out-of-order bytes, limit ${this.config.oooMaxBytes}`);
      // Received and held: within the buffer, plus less than one unit of the scaled window (rounding up).
      const held = c.rcvBuffered + c.rcv.oooBytes;
      if (held >= this.config.rcvBuf + (1 << c.rcv.wscale)) throw this.failure(`${name}: ${held} bytes received and held, rcvBuf ${this.config.rcvBuf}`);
      // ...and in few buffers: a peer sending 1-byte segments must not make us keep one object per byte.
      if (c.rcv.chunks > (2 * c.rcvBuffered) / RCV_COALESCE_BYTES + 1) {
        throw this.failure(`${name}: ${c.rcvBuffered} bytes received and held in ${c.rcv.chunks} buffers`);
      }
      if (c.snd.buffer.length > this.config.sndBuf + MAX_WRITE) {
        throw this.failure(`${name}: ${c.snd.buffer.length} bytes queued to send, sndBuf ${this.config.sndBuf}`);
      }
    }
    const stats = this.stack.stats();
    if (stats['ip.reasm.buffered-bytes']! > REASM_MAX_BYTES) throw this.failure(`reassembly holds ${stats['ip.reasm.buffered-bytes']} bytes`);
    // The layer rebuilds its heap when stale entries exceed 4 per connection + 1024.
    if (stats['tcp.timers']! > 4 * this.peakConnections + 1025) throw this.failure(`${stats['tcp.timers']} timer heap entries`);
  }

  /** Ten quiet minutes later, nothing is left. */
  async drain(): Promise<void> {
    this.held = [];
    await this.settle(DRAIN_MS);
    this.check();
    const left = this.stack.connections();
    if (left.length > 0) throw this.failure(`after ${DRAIN_MS / 60_000} quiet minutes the stack still holds ${JSON.stringify(left)}`);
    if (this.stack.tcp.connectionCount !== 0) throw this.failure(`${this.stack.tcp.connectionCount} connections left in the table`);
    if (this.stack.tcp.nextDeadline() !== Infinity) throw this.failure('a TCP deadline is still set');
    const stats = this.stack.stats();
    if (stats['tcp.timers'] !== 0) throw this.failure(`${stats['tcp.timers']} timer heap entries left`);
    if (this.stack.ip.nextDeadline() !== Infinity || stats['ip.reasm.buffered-bytes'] !== 0) {
      throw this.failure(`reassembly still holds ${stats['ip.reasm.buffered-bytes']} bytes`);
    }
    const open = this.sockets.filter((s) => !s.destroyed).length;
    if (open > 0) throw this.failure(`${open} application sockets are still open`);
    for (const server of this.servers) {
      if (server.connectionCount !== 0) throw this.failure(`a server still counts ${server.connectionCount} connections`);
    }
    for (const [cls, sent] of this.classes) {
      const expected = EXPECTED_COUNTER[cls];
      if (expected === undefined) continue;
      const counters = typeof expected === 'string' ? [expected] : expected;
      const counted = counters.reduce((sum, c) => sum + (stats[c] ?? 0), 0);
      if (counted < sent) throw this.failure(`sent ${sent} packets of class ${cls}, but ${counters.join(' + ')} = ${counted}`);
    }
  }

  // ===================================================================================
  // The run
  // ===================================================================================

  async run(steps: number): Promise<FuzzOutcome> {
    const d = this.dice;
    const actions: Array<[number, () => void | Promise<void>]> = [
      [6, () => this.open()],
      [20, () => this.data()],
      [3, () => this.burst()],
      [12, () => this.ack()],
      [20, () => this.fuzzSegment()],
      [2, () => this.fin()],
      [0.5, () => this.reset()],
      [4, () => this.duplicate()],
      [4, () => this.holdBack()],
      [3, () => this.retransmit()],
      [10, () => this.sleep()],
      [3, () => this.malformedIp()],
      [4, () => this.malformedTcp()],
      [2, () => this.udpDatagram()],
      [2, () => this.icmpMessage()],
      [1, () => this.unknownProtocol()],
      [4, () => this.fragmentsOf()],
      [1, () => this.ipOptions()],
      [1, () => this.synFlood()],
      [3, () => this.application()],
      [1.5, () => this.connect()],
    ];
    const total = actions.reduce((s, [w]) => s + w, 0);
    // Two sweeps per seed, at steps drawn from the seed.
    const truncatedAt = d.int(steps);
    const icmpTypesAt = d.int(steps);
    for (this.step = 0; this.step < steps; this.step++) {
      if (this.step === truncatedAt) this.truncatedSweep();
      if (this.step === icmpTypesAt) this.icmpTypeSweep();
      let x = d.r() * total;
      for (const [w, act] of actions) {
        x -= w;
        if (x < 0) {
          await act();
          break;
        }
      }
      if (this.held.length > 0 && d.chance(0.25)) this.releaseHeld();
      // Usually let the packets through now; sometimes let several arrive as one batch.
      if (d.chance(0.75)) await this.settle(d.chance(0.3) ? 1 : 0);
      this.respond();
      this.check();
    }
    await this.settle(0);
    this.check();
    await this.drain();
    return { packetsIn: this.packetsIn, stats: this.stack.stats(), states: this.states };
  }

  // ===================================================================================
  // The semi-valid peer
  // ===================================================================================

  private nextIpId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }

  /** Wrap a TCP segment from the peer in IPv4; one larger than the link goes in fragments half the time. */
  private sendSegment(label: string, flow: { port: number; server: number }, f: SegmentFields, payload?: Uint8Array): void {
    const packet = this.segmentPacket(flow, f, payload);
    if (f.flags & SYN) this.synTuples.add(`${flow.server}:${flow.port}`);
    this.history.push(packet);
    if (this.history.length > 64) this.history.shift();
    if (packet.length > this.mtu && this.dice.chance(0.5)) {
      const seg = packet.subarray(IPV4_HEADER_LEN);
      for (const frag of fragments({ src: PEER_ADDR, dst: STACK_ADDR, protocol: PROTO_TCP, id: this.nextIpId() }, seg, this.cuts(seg.length))) {
        this.inject(`${label} (fragment)`, frag);
      }
      return;
    }
    this.inject(label, packet);
  }

  private segmentPacket(flow: { port: number; server: number }, f: SegmentFields, payload?: Uint8Array, src = PEER_ADDR): Uint8Array {
    const seg = tcp(
      {
        src,
        dst: STACK_ADDR,
        srcPort: flow.port,
        dstPort: flow.server,
        seq: f.seq,
        ack: f.ack,
        flags: f.flags,
        window: f.window ?? 65535,
        urgentPointer: f.urgentPointer,
        options: f.options,
        raw: f.raw,
      },
      payload,
    );
    return ipv4({ src, dst: STACK_ADDR, protocol: PROTO_TCP, id: this.nextIpId(), df: true }, seg);
  }

  /** Fragment boundaries for `len` bytes of IP data: multiples of 8 that fit the link. */
  private cuts(len: number): number[] {
    const most = Math.max(8, ((this.mtu - IPV4_HEADER_LEN) >>> 3) << 3);
    const out = [0];
    for (let at = 0; ; ) {
      at += 8 * this.dice.range(1, most / 8);
      if (at >= len) return out;
      out.push(at);
    }
  }

  private windowField(): number {
    const x = this.dice.r();
    if (x < 0.5) return 65535;
    if (x < 0.65) return 0;
    if (x < 0.8) return this.dice.range(1, 1000);
    return this.dice.int(65536);
  }

  private payloadSize(): number {
    const d = this.dice;
    const x = d.r();
    if (x < 0.3) return 0;
    if (x < 0.45) return d.range(1, 8);
    if (x < 0.85) return d.range(1, this.mss);
    if (x < 0.97) return d.range(this.mss + 1, 2 * this.mss);
    return d.range(2 * this.mss, 20_000);
  }

  /** A sequence number near `base`: exact, inside or just outside `span`, old, half the space away, or anywhere. */
  private near(base: number, span: number): number {
    const d = this.dice;
    switch (d.int(9)) {
      case 0:
      case 1:
      case 2:
        return base;
      case 3:
        return seqAdd(base, d.range(1, span));
      case 4:
        return seqAdd(base, -d.range(1, span));
      case 5:
        return seqAdd(base, 0x80000000 + d.range(-2, 2));
      case 6:
        return seqAdd(base, d.pick([-1, 1]));
      case 7:
        return seqAdd(base, d.pick([span, span + 1, -span - 1, 65535, 65536, 1 << 30]));
      default:
        return d.u32();
    }
  }

  private randomFlow(filter: (f: Flow) => boolean = () => true): Flow | undefined {
    const candidates = [...this.flows.values()].filter(filter);
    return candidates.length > 0 ? this.dice.pick(candidates) : undefined;
  }

  /** A flow that can carry data: established (the final ACK of the handshake is sent first if need be). */
  private liveFlow(): Flow | undefined {
    const flow = this.randomFlow((f) => f.synAckSeen && !f.reset) ?? this.randomFlow((f) => f.synAckSeen);
    if (!flow) return undefined;
    if (!flow.established) {
      this.sendSegment('handshake ACK', flow, { seq: flow.sndNxt, ack: flow.rcvNxt, flags: ACK, window: this.windowField() });
      flow.established = true;
    }
    return flow;
  }

  /**
   * The well-behaved part of the peer: acknowledge what the stack sent (mostly promptly, like a
   * delayed ACK; sometimes not at all), and answer its FIN with ours now and then.
   */
  private respond(): void {
    const d = this.dice;
    for (const flow of this.flows.values()) {
      if (flow.synDue && d.chance(0.7)) {
        flow.synDue = false;
        const x = d.r();
        if (x < 0.8) {
          // Sometimes with data, and even a FIN, on the SYN-ACK (RFC 9293 §3.10.7.3 allows both).
          const n = d.chance(0.1) ? d.range(1, this.mss) : 0;
          const fin = d.chance(0.05) ? FIN : 0;
          const synAck = { seq: flow.iss, ack: flow.rcvNxt, flags: SYN | ACK | fin, window: this.windowField(), ...this.synOptions() };
          this.sendSegment('SYN-ACK', flow, synAck, d.bytes(n));
          flow.sndNxt = seqAdd(flow.iss, 1 + n + (fin ? 1 : 0));
          if (fin) flow.finSent = true;
        } else if (x < 0.9) {
          this.sendSegment('RST (refused)', flow, { seq: 0, ack: flow.rcvNxt, flags: RST | ACK, window: 0 });
          flow.reset = true;
        } else {
          // A SYN of its own: simultaneous open (RFC 9293 §3.5, figure 8).
          this.sendSegment('SYN (crossing)', flow, { seq: flow.iss, ack: 0, flags: SYN, window: 65535, ...this.synOptions() });
        }
        continue;
      }
      if (!flow.owesAck || !flow.established || flow.reset || !d.chance(0.7)) continue;
      flow.owesAck = false;
      if (flow.stackFin && !flow.finSent && d.chance(0.3)) {
        this.fin(flow);
        continue;
      }
      this.sendSegment('ACK (prompt)', flow, { seq: flow.sndNxt, ack: flow.rcvNxt, flags: ACK, window: d.chance(0.9) ? 65535 : this.windowField() });
    }
  }

  private tsOption(flow: Flow): TcpOptions | undefined {
    if (!this.dice.chance(0.3)) return undefined;
    flow.tsVal = (flow.tsVal + this.dice.range(0, 1000)) >>> 0;
    return { timestamp: { value: flow.tsVal, echo: this.dice.u32() } };
  }

  /** Options a SYN may carry: mostly the usual ones with odd values (MSS 0 or 1, window scale 14 or 255). */
  private synOptions(): { options?: TcpOptions; raw?: Uint8Array } {
    const d = this.dice;
    if (d.chance(0.75)) {
      const o: TcpOptions = {};
      if (d.chance(0.8)) o.mss = d.pick([0, 1, 64, 88, 536, 1460, 8960, 65535]);
      if (d.chance(0.6)) o.wscale = d.pick([0, 1, 7, 14]);
      if (d.chance(0.5)) o.sackPermitted = true;
      if (d.chance(0.4)) o.timestamp = { value: d.u32(), echo: 0 };
      return { options: o };
    }
    return { raw: this.oddValidOptions() };
  }

  /** Option bytes that parse, but are unusual: unknown kinds, MSS 0, window scale 15+, EOL then garbage. */
  private oddValidOptions(): Uint8Array {
    const d = this.dice;
    const list: RawOption[] = [];
    let len = 0;
    for (let n = d.range(1, 5); n > 0; n--) {
      const choices: RawOption[] = [
        { kind: 2, data: [0, 0] }, // MSS 0
        { kind: 2, data: [d.int(256), d.int(256)] },
        { kind: 3, data: [d.range(15, 255)] }, // window scale beyond 14 (RFC 7323 §2.3: use 14)
        { kind: 4 },
        { kind: 8, data: [...d.bytes(8)] },
        { kind: 5, data: [...d.bytes(8 * d.range(1, 3))] }, // SACK blocks
        { kind: d.pick([6, 7, 9, 19, 28, 29, 30, 34, 69, 253, 254, 255]), data: [...d.bytes(d.int(7))] },
        1, // NOP
      ];
      const o = d.pick(choices);
      const size = typeof o === 'number' ? 1 : 2 + (o.data?.length ?? 0);
      if (len + size > 36) break;
      list.push(o);
      len += size;
    }
    // End of Option List, then garbage that must be ignored (RFC 9293 §3.2).
    if (d.chance(0.2) && len < 34) list.push(0, d.int(256), d.int(256));
    return rawOptions(list);
  }

  /** Options on a segment after the handshake: none, timestamps, SACK blocks, SYN-only options, or odd ones. */
  private segmentOptions(flow: Flow): { options?: TcpOptions; raw?: Uint8Array } {
    const d = this.dice;
    const x = d.r();
    if (x < 0.5) return {};
    if (x < 0.65) return { options: { timestamp: { value: d.u32(), echo: d.u32() } } };
    if (x < 0.8) {
      const sack: Array<[number, number]> = [];
      for (let n = d.range(1, 4); n > 0; n--) {
        const left = this.near(flow.rcvNxt, 65535);
        sack.push([left, d.chance(0.8) ? seqAdd(left, d.range(1, 20_000)) : d.u32()]);
      }
      return { options: { sack } };
    }
    if (x < 0.9) return { options: { mss: d.int(65536), wscale: d.int(15), sackPermitted: true } };
    return { raw: this.oddValidOptions() };
  }

  /** Open a connection (or retransmit a SYN, or reuse a port with a fresh ISN). */
  private open(): void {
    const d = this.dice;
    let flow: Flow | undefined;
    if (this.flows.size < MAX_FLOWS && (this.flows.size === 0 || d.chance(0.6))) {
      const port = FLOW_PORT_BASE + this.flows.size;
      const server = d.pick([PORTS.echo, PORTS.echo, PORTS.paused, PORTS.talker]);
      flow = {
        port,
        server,
        iss: 0,
        sndNxt: 0,
        synAckSeen: false,
        established: false,
        reset: false,
        ourIsn: 0,
        rcvNxt: 0,
        stackAck: 0,
        tsVal: d.u32(),
        owesAck: false,
        stackFin: false,
        finSent: false,
        active: false,
        synDue: false,
      };
      this.flows.set(`${server}:${port}`, flow);
    } else {
      flow = this.randomFlow((f) => !f.active && (f.reset || !f.synAckSeen)) ?? this.randomFlow((f) => !f.active);
      if (!flow) return;
      if (!flow.synAckSeen && flow.sndNxt !== 0 && d.chance(0.7)) {
        // Our SYN went unanswered: send the very same SYN again.
        this.sendSegment('SYN again', flow, { seq: flow.iss, ack: 0, flags: SYN, window: 65535, options: { mss: 1460 } });
        return;
      }
    }
    // A fresh incarnation: a new ISN (sometimes below the old one, sometimes just before the
    // sequence space wraps), nothing learned yet.
    flow.iss = d.chance(0.2) ? seqAdd(0, -d.range(1, 100_000)) : d.u32();
    flow.sndNxt = seqAdd(flow.iss, 1);
    flow.synAckSeen = flow.established = flow.reset = flow.owesAck = flow.stackFin = flow.finSent = false;
    const flags = SYN | (d.chance(0.1) ? ECE | CWR : 0);
    this.sendSegment('SYN', flow, { seq: flow.iss, ack: 0, flags, window: this.windowField(), ...this.synOptions() });
  }

  /** In-order data, as a real peer sends it. */
  private data(): void {
    const flow = this.liveFlow();
    if (!flow) return this.open();
    const n = Math.max(1, this.payloadSize());
    const flags = ACK | (this.dice.chance(0.5) ? PSH : 0);
    this.sendSegment('data', flow, { seq: flow.sndNxt, ack: flow.rcvNxt, flags, window: this.windowField(), options: this.tsOption(flow) }, this.dice.bytes(n));
    flow.sndNxt = seqAdd(flow.sndNxt, n);
  }

  /** A bulk sender: in-order segments back to back, a window's worth or more. */
  private burst(): void {
    const flow = this.liveFlow();
    if (!flow) return this.open();
    const size = this.dice.chance(0.5) ? this.mss : this.dice.range(1, this.mss);
    for (let k = this.dice.range(2, 24); k > 0; k--) {
      this.sendSegment('burst', flow, { seq: flow.sndNxt, ack: flow.rcvNxt, flags: ACK, window: 65535 }, this.dice.bytes(size));
      flow.sndNxt = seqAdd(flow.sndNxt, size);
    }
  }

  /** A pure ACK of everything received from the stack (sometimes with SACK blocks). */
  private ack(): void {
    const flow = this.liveFlow();
    if (!flow) return this.open();
    const options = this.dice.chance(0.2) ? this.segmentOptions(flow) : { options: this.tsOption(flow) };
    this.sendSegment('ACK', flow, { seq: flow.sndNxt, ack: flow.rcvNxt, flags: ACK, window: this.windowField(), ...options });
  }

  private fin(to?: Flow): void {
    const flow = to ?? this.liveFlow();
    if (!flow) return;
    const n = this.dice.chance(0.3) ? this.dice.range(1, this.mss) : 0;
    this.sendSegment('FIN', flow, { seq: flow.sndNxt, ack: flow.rcvNxt, flags: FIN | ACK, window: this.windowField() }, this.dice.bytes(n));
    flow.sndNxt = seqAdd(flow.sndNxt, n + 1);
    flow.finSent = true;
  }

  private reset(): void {
    const flow = this.randomFlow((f) => f.synAckSeen);
    if (!flow) return;
    const flags = RST | (this.dice.chance(0.5) ? ACK : 0);
    this.sendSegment('RST', flow, { seq: flow.sndNxt, ack: flow.rcvNxt, flags, window: 0 });
    flow.reset = true;
  }

  /** A segment with numbers near the right ones, any flags, any size, any options. */
  private fuzzSegment(): void {
    const d = this.dice;
    const flow = this.randomFlow();
    if (!flow) return this.open();
    let flags: number;
    if (d.chance(0.5)) {
      flags = ACK | (d.chance(0.3) ? PSH : 0);
    } else {
      const combo = d.int(16); // SYN, FIN, RST and URG in every combination, with and without ACK
      flags = (combo & 1 ? SYN : 0) | (combo & 2 ? FIN : 0) | (combo & 4 ? RST : 0) | (combo & 8 ? URG : 0);
      if (d.chance(0.6)) flags |= ACK;
      if (d.chance(0.3)) flags |= PSH;
      if (d.chance(0.1)) flags |= ECE;
      if (d.chance(0.1)) flags |= CWR;
    }
    const seq = this.near(flow.sndNxt, this.config.rcvBuf);
    const ack = flags & ACK || d.chance(0.2) ? this.near(flow.rcvNxt, 65535) : 0;
    const urgentPointer = flags & URG || d.chance(0.05) ? d.int(65536) : 0;
    const opts = flags & SYN ? this.synOptions() : this.segmentOptions(flow);
    this.sendSegment('fuzz', flow, { seq, ack, flags, window: this.windowField(), urgentPointer, ...opts }, d.bytes(this.payloadSize()));
  }

  private duplicate(): void {
    if (this.history.length === 0) return;
    const p = this.dice.pick(this.history);
    const copies = this.dice.range(1, 3);
    for (let i = 0; i < copies; i++) this.inject('duplicate', p.slice());
  }

  /** In-order data that the network holds back: the segments after it arrive first. */
  private holdBack(): void {
    const flow = this.liveFlow();
    if (!flow) return;
    const n = this.dice.range(1, this.mss);
    const packet = this.segmentPacket(flow, { seq: flow.sndNxt, ack: flow.rcvNxt, flags: ACK | PSH, window: 65535 }, this.dice.bytes(n));
    flow.sndNxt = seqAdd(flow.sndNxt, n);
    this.held.push({ at: this.clock.now(), label: 'held back', packet });
  }

  private releaseHeld(): void {
    const d = this.dice;
    const n = d.range(1, this.held.length);
    for (const h of d.shuffle(this.held).splice(0, n)) this.inject(`${h.label} +${this.clock.now() - h.at}ms`, h.packet);
  }

  /** Go back to what the stack has acknowledged and send it again (the peer thinks it was lost). */
  private retransmit(): void {
    const flow = this.randomFlow((f) => f.established && !f.reset && seqLt(f.stackAck, f.sndNxt));
    if (!flow) return;
    let seq = flow.stackAck;
    for (let k = 0; k < 3 && seqLt(seq, flow.sndNxt); k++) {
      const n = Math.min(seqSub(flow.sndNxt, seq), this.dice.range(1, this.mss));
      this.sendSegment('retransmission', flow, { seq, ack: flow.rcvNxt, flags: ACK, window: 65535 }, this.dice.bytes(n));
      seq = seqAdd(seq, n);
    }
  }

  private sleep(): Promise<void> {
    const d = this.dice;
    return this.settle(d.chance(0.8) ? d.pick([1, 5, 40, 100, 200, 500]) : d.pick([1000, 3000, 10_000, 30_000, 70_000]));
  }

  /** Half-open connections from ports the peer never completes: the listener's backlog must hold. */
  private synFlood(): void {
    const d = this.dice;
    for (let n = d.range(1, 20); n > 0; n--) {
      const port = d.range(20000, 29999);
      this.floodPorts.add(port);
      const flow = { port, server: PORTS.paused };
      this.inject('SYN flood', this.segmentPacket(flow, { seq: d.u32(), ack: 0, flags: SYN, window: 65535, options: { mss: 1460 } }));
    }
  }

  /** The stack's client application connects to the peer, sends a little, and reads what comes. */
  private connect(): void {
    const d = this.dice;
    if (this.connects >= MAX_FLOWS) return;
    this.connects++;
    const s = this.stack.connect({ host: '10.0.0.2', port: d.pick(PEER_SERVER_PORTS) });
    this.adopt(s);
    s.resume();
    const chunks = d.int(4);
    s.once('connect', () => this.talk(s, chunks));
  }

  /** The application does something in the middle of it all. */
  private application(): void {
    const d = this.dice;
    if (d.chance(0.03) && this.talker) {
      // The talker stops listening (handshakes under way are dropped) and starts again on the same port.
      this.talker.close();
      this.startTalker();
      return;
    }
    const open = this.sockets.filter((s) => !s.destroyed);
    if (open.length === 0) return;
    const s = d.pick(open);
    switch (d.int(6)) {
      case 0:
        s.pause();
        break;
      case 1:
        s.resume();
        break;
      case 2:
        if (s.writable && !s.writableEnded) s.write(d.bytes(d.range(1, 16_384)));
        break;
      case 3:
        s.end();
        break;
      case 4:
        s.destroy();
        break;
      default:
        s.setNoDelay(d.chance(0.5));
    }
  }

  // ===================================================================================
  // Malformed and foreign packets
  // ===================================================================================

  /** A well-formed data segment from the peer (for a flow if there is one), to break on purpose. */
  private validPacket(payloadLen = this.dice.range(0, 100)): Uint8Array {
    const flow = this.randomFlow((f) => f.synAckSeen) ?? { port: FLOW_PORT_BASE, server: PORTS.echo, sndNxt: 1, rcvNxt: 1 };
    return this.segmentPacket(flow, { seq: flow.sndNxt, ack: flow.rcvNxt, flags: ACK, window: 65535 }, this.dice.bytes(payloadLen));
  }

  private malformedIp(): void {
    const d = this.dice;
    const p = this.validPacket();
    switch (d.int(7)) {
      case 0: // a flipped bit the header checksum catches (RFC 791 §3.1)
        p[d.pick([4, 5, 8, 9])]! ^= 1 << d.int(8);
        return this.injectClass('ip-bad-checksum', p);
      case 1:
        p[0] = (d.pick([0, 1, 5, 6, 7, 15]) << 4) | 5;
        setIpv4Checksum(p);
        return this.injectClass('ip-bad-version', p);
      case 2:
        p[0] = 0x40 | d.int(5); // IHL below 5 words
        return this.injectClass('ip-bad-ihl', p);
      case 3: {
        const total = d.int(20); // Total Length smaller than the header
        p[2] = 0;
        p[3] = total;
        setIpv4Checksum(p);
        return this.injectClass('ip-bad-total-length', p);
      }
      case 4: {
        const total = Math.min(65535, p.length + d.range(1, 2000)); // longer than what arrived
        p[2] = total >>> 8;
        p[3] = total & 0xff;
        setIpv4Checksum(p);
        return this.injectClass('ip-truncated', p);
      }
      case 5: {
        const dst: Ipv4Addr = d.pick([parseAddr('10.0.0.9')!, 0xffffffff, parseAddr('224.0.0.1')!, 0, d.u32()]);
        if (dst === STACK_ADDR) return;
        p.set([dst >>> 24, (dst >>> 16) & 0xff, (dst >>> 8) & 0xff, dst & 0xff], 16);
        setIpv4Checksum(p);
        return this.injectClass('not-for-us', p);
      }
      default: {
        const src: Ipv4Addr = d.pick([0, parseAddr('127.0.0.1')!, 0xffffffff, parseAddr('224.0.0.5')!, parseAddr('240.0.0.1')!, STACK_ADDR]);
        p.set([src >>> 24, (src >>> 16) & 0xff, (src >>> 8) & 0xff, src & 0xff], 12);
        setIpv4Checksum(p);
        return this.injectClass('bad-src', p);
      }
    }
  }

  /** Option bytes that do not parse (RFC 9293 §3.2 MUST-7: survive them); some valid options first. */
  private invalidOptions(): Uint8Array {
    const d = this.dice;
    const kind = d.range(2, 255);
    const bad: RawOption[][] = [
      [{ kind, len: 0 }],
      [{ kind, len: 1 }],
      [{ kind, len: d.range(41, 255), data: [1, 2] }], // runs past the header
      [{ kind: 2, len: 3, data: [5] }], // MSS must be 4 bytes
      [{ kind: 2, len: 5, data: [5, 180, 0] }],
      [{ kind: 3, len: 2 }], // window scale must be 3
      [{ kind: 3, len: 4, data: [7, 0] }],
      [{ kind: 4, len: 3, data: [0] }], // SACK-permitted must be 2
      [{ kind: 5, len: 9, data: [...d.bytes(7)] }], // SACK must be 2 + 8n, n >= 1
      [{ kind: 5, len: 2 }],
      [{ kind: 8, len: 8, data: [...d.bytes(6)] }], // timestamps must be 10
      [1, 1, 1, kind], // a kind with no room for its length byte
    ];
    const prefix: RawOption[] = d.chance(0.5) ? [] : d.pick([[1], [1, 1], [{ kind: 2, data: [5, 180] }], [{ kind: 4 }, 1, 1]]);
    return rawOptions([...prefix, ...d.pick(bad)]);
  }

  private malformedTcp(): void {
    const d = this.dice;
    const flow = this.randomFlow((f) => f.synAckSeen) ?? { port: FLOW_PORT_BASE, server: PORTS.echo, sndNxt: 1, rcvNxt: 1 };
    const fields: SegmentFields = { seq: flow.sndNxt, ack: flow.rcvNxt, flags: d.pick([ACK, SYN, ACK | PSH]), window: 65535 };
    switch (d.int(5)) {
      case 0: {
        const p = this.segmentPacket(flow, fields, d.bytes(d.range(0, 200)));
        // The checksum catches any one flipped bit (but one in the data offset is a different error first).
        let at = d.range(IPV4_HEADER_LEN, p.length - 1);
        if (at === IPV4_HEADER_LEN + 12) at++;
        p[at]! ^= 1 << d.int(8);
        return this.injectClass('tcp-bad-checksum', p);
      }
      case 1:
        return this.injectClass('tcp-bad-option', this.segmentPacket(flow, { ...fields, raw: this.invalidOptions() }, d.bytes(d.range(0, 50))));
      case 2: {
        // Data offset below 5 words, or past the end of the segment.
        const p = this.segmentPacket(flow, fields, d.bytes(d.range(0, 30)));
        const segLen = p.length - IPV4_HEADER_LEN;
        const words = d.chance(0.5) || segLen >= 60 ? d.int(5) : d.range(Math.floor(segLen / 4) + 1, 15);
        p[IPV4_HEADER_LEN + 12] = words << 4;
        setTransportChecksum(p.subarray(IPV4_HEADER_LEN), PROTO_TCP, PEER_ADDR, STACK_ADDR);
        return this.injectClass('tcp-bad-data-offset', p);
      }
      case 3: {
        // An IP datagram whose data is shorter than a TCP header.
        const seg = this.segmentPacket(flow, fields).subarray(IPV4_HEADER_LEN, IPV4_HEADER_LEN + d.int(20));
        return this.injectClass('tcp-truncated', ipv4({ src: PEER_ADDR, dst: STACK_ADDR, protocol: PROTO_TCP, id: this.nextIpId() }, seg));
      }
      default: {
        const ports = d.pick([{ port: 0, server: flow.server }, { port: flow.port, server: 0 }, { port: 0, server: 0 }]);
        return this.injectClass('tcp-bad-ports', this.segmentPacket(ports, fields));
      }
    }
  }

  private udpDatagram(): void {
    const d = this.dice;
    const src = d.chance(0.8) ? PEER_ADDR : OTHER_ADDR;
    const srcPort = d.chance(0.1) ? 0 : d.range(1, 65535);
    const data = d.bytes(d.chance(0.1) ? d.range(this.mtu, 9000) : d.range(0, 200));
    const wrap = (dgram: Uint8Array): Uint8Array => ipv4({ src, dst: STACK_ADDR, protocol: PROTO_UDP, id: this.nextIpId() }, dgram);
    switch (d.int(6)) {
      case 0:
      case 1: {
        const p = wrap(udp({ src, dst: STACK_ADDR, srcPort, dstPort: UDP_PORT }, data));
        if (p.length <= this.mtu || d.chance(0.5)) return this.injectClass('udp-bound', p);
        // Too big for the link: in fragments, as a real sender would (the echo goes back in fragments too).
        this.classes.set('udp-bound', (this.classes.get('udp-bound') ?? 0) + 1);
        const frags = fragments({ src, dst: STACK_ADDR, protocol: PROTO_UDP, id: this.nextIpId() }, p.subarray(IPV4_HEADER_LEN), this.cuts(p.length - IPV4_HEADER_LEN));
        for (const f of d.shuffle(frags)) this.inject('udp-bound (fragment)', f);
        return;
      }
      case 2:
        return this.injectClass('udp-no-port', wrap(udp({ src, dst: STACK_ADDR, srcPort, dstPort: d.pick([1, 54, 9999, 65535]) }, data)));
      case 3: {
        const dgram = udp({ src, dst: STACK_ADDR, srcPort, dstPort: UDP_PORT }, data);
        dgram[d.range(0, dgram.length - 1)]! ^= 1 << d.int(8);
        if (dgram[6] === 0 && dgram[7] === 0) return; // zero means "no checksum": nothing left to catch
        // A flipped length byte is a length error first; only a datagram that still fits is a checksum error.
        const length = (dgram[4]! << 8) | dgram[5]!;
        const cls = length < 8 ? 'udp-bad-length' : length > dgram.length ? 'udp-truncated' : 'udp-bad-checksum';
        return this.injectClass(cls, wrap(dgram));
      }
      case 4: {
        const dgram = udp({ src, dst: STACK_ADDR, srcPort, dstPort: UDP_PORT }, data);
        dgram[4] = 0;
        dgram[5] = d.int(8); // Length below the header's own 8 bytes
        return this.injectClass('udp-bad-length', wrap(dgram));
      }
      default: {
        const dgram = udp({ src, dst: STACK_ADDR, srcPort, dstPort: UDP_PORT }, data);
        const length = dgram.length + d.range(1, 100); // longer than what arrived
        dgram[4] = length >>> 8;
        dgram[5] = length & 0xff;
        setTransportChecksum(dgram, PROTO_UDP, src, STACK_ADDR);
        return this.injectClass('udp-truncated', wrap(dgram));
      }
    }
  }

  private icmpMessage(): void {
    const d = this.dice;
    const src = d.chance(0.7) ? PEER_ADDR : OTHER_ADDR;
    const wrap = (m: Uint8Array): Uint8Array => ipv4({ src, dst: STACK_ADDR, protocol: PROTO_ICMP, id: this.nextIpId() }, m);
    switch (d.int(4)) {
      case 0: {
        const p = wrap(icmp({ type: 8, code: 0, restOfHeader: d.u32() }, d.bytes(d.chance(0.1) ? d.range(this.mtu, 9000) : d.range(0, 100))));
        if (p.length <= this.mtu) return this.injectClass('icmp-echo', p);
        // A big ping arrives in fragments; its reply leaves in fragments.
        this.classes.set('icmp-echo', (this.classes.get('icmp-echo') ?? 0) + 1);
        const frags = fragments({ src, dst: STACK_ADDR, protocol: PROTO_ICMP, id: this.nextIpId() }, p.subarray(IPV4_HEADER_LEN), this.cuts(p.length - IPV4_HEADER_LEN));
        for (const f of d.shuffle(frags)) this.inject('icmp-echo (fragment)', f);
        return;
      }
      case 1: {
        // Any type and code; errors quote one of the stack's own packets, as a router would.
        const quote = this.output.length > 0 && d.chance(0.5) ? d.pick(this.output).packet.subarray(0, IPV4_HEADER_LEN + 8) : d.bytes(d.range(0, 60));
        return this.inject('icmp', wrap(icmp({ type: d.int(256), code: d.int(256), restOfHeader: d.u32() }, quote)));
      }
      case 2: {
        const m = icmp({ type: d.pick([0, 3, 8, 11, 42]), code: d.int(16) }, d.bytes(d.range(0, 64)));
        m[d.range(0, m.length - 1)]! ^= 1 << d.int(8);
        return this.injectClass('icmp-bad-checksum', wrap(m));
      }
      default:
        return this.injectClass('icmp-truncated', wrap(d.bytes(d.int(8))));
    }
  }

  private unknownProtocol(): void {
    const d = this.dice;
    let protocol = d.int(256);
    if (protocol === PROTO_ICMP || protocol === PROTO_TCP || protocol === PROTO_UDP) protocol = 253;
    const src = d.chance(0.5) ? PEER_ADDR : OTHER_ADDR;
    this.injectClass('unknown-protocol', ipv4({ src, dst: STACK_ADDR, protocol, id: this.nextIpId(), df: d.chance(0.5) }, d.bytes(d.range(0, 100))));
  }

  /** A real segment from the peer in an IPv4 header with options (IHL 6 to 15): it must be delivered. */
  private ipOptions(): void {
    const flow = this.liveFlow();
    if (!flow) return;
    const n = this.dice.range(0, Math.max(0, this.mss - 40));
    const seg = tcp(
      { src: PEER_ADDR, dst: STACK_ADDR, srcPort: flow.port, dstPort: flow.server, seq: flow.sndNxt, ack: flow.rcvNxt, flags: ACK | PSH, window: 65535 },
      this.dice.bytes(n),
    );
    flow.sndNxt = seqAdd(flow.sndNxt, n);
    const options = this.dice.bytes(this.dice.range(1, 40));
    this.inject('IP options', ipv4({ src: PEER_ADDR, dst: STACK_ADDR, protocol: PROTO_TCP, id: this.nextIpId(), options }, seg));
  }

  /** Fragments: real datagrams cut up, and pieces that overlap, disagree, overflow or never complete. */
  private fragmentsOf(): void {
    const d = this.dice;
    const src = d.chance(0.7) ? PEER_ADDR : OTHER_ADDR;
    const frag = (f: { id: number; mf: boolean; offset: number; protocol?: number }, data: Uint8Array): Uint8Array =>
      ipv4({ src, dst: STACK_ADDR, protocol: f.protocol ?? PROTO_UDP, id: f.id, mf: f.mf, fragmentOffset: f.offset }, data);
    switch (d.int(d.chance(0.05) ? 8 : 7)) {
      case 7: {
        // More first fragments than the reassembly memory holds (4 MiB): the oldest are evicted.
        const big = new Uint8Array(60_000);
        for (let k = 0; k < 72; k++) this.inject('fragment memory flood', frag({ id: this.uniqueId++, mf: true, offset: 0 }, big));
        return;
      }
      case 0: {
        // A real data segment of a flow, cut up and shuffled; sometimes one piece twice, or one lost.
        const flow = this.liveFlow();
        if (!flow) return;
        const n = d.range(1, 3 * this.mss);
        const packet = this.segmentPacket(flow, { seq: flow.sndNxt, ack: flow.rcvNxt, flags: ACK, window: 65535 }, d.bytes(n));
        flow.sndNxt = seqAdd(flow.sndNxt, n);
        const seg = packet.subarray(IPV4_HEADER_LEN);
        const options = d.chance(0.2) ? d.bytes(d.range(1, 40)) : undefined; // IP options on every piece
        const pieces = d.shuffle(fragments({ src: PEER_ADDR, dst: STACK_ADDR, protocol: PROTO_TCP, id: this.nextIpId(), options }, seg, this.cuts(seg.length)));
        if (d.chance(0.2)) pieces.push(pieces[0]!.slice());
        if (pieces.length > 1 && d.chance(0.1)) pieces.pop();
        for (const p of pieces) this.inject('TCP in fragments', p);
        return;
      }
      case 1: {
        // Noise: a few IDs, any offset, any length, any MF; they collide with each other on purpose.
        for (let k = d.range(1, 6); k > 0; k--) {
          const offset = 8 * (d.chance(0.8) ? d.int(64) : d.int(8192));
          const len = d.chance(0.8) ? 8 * d.range(1, 32) : d.range(0, 300);
          this.inject('fragment noise', frag({ id: d.int(8), mf: d.chance(0.6), offset, protocol: d.pick([PROTO_UDP, PROTO_ICMP, PROTO_TCP, 99]) }, d.bytes(len)));
        }
        return;
      }
      case 2: {
        const id = this.uniqueId++;
        this.inject('overlap, first', frag({ id, mf: true, offset: 0 }, d.bytes(16)));
        return this.injectClass('frag-overlap', frag({ id, mf: d.chance(0.5), offset: 8 }, d.bytes(16)));
      }
      case 3: // ping of death: the last piece ends beyond 65535 (RFC 791: Total Length is 16 bits)
        return this.injectClass('frag-too-big', frag({ id: this.uniqueId++, mf: d.chance(0.5), offset: 65528 }, d.bytes(8 * d.range(2, 25))));
      case 4: // a non-last piece whose length is not a multiple of 8
        return this.injectClass('frag-bad-length', frag({ id: this.uniqueId++, mf: true, offset: 8 * d.int(100) }, d.bytes(8 * d.int(10) + d.range(1, 7))));
      case 5: {
        // The last piece says the datagram ends at 24; another piece lies beyond that.
        const id = this.uniqueId++;
        this.inject('inconsistent, last', frag({ id, mf: false, offset: 16 }, d.bytes(8)));
        return this.injectClass('frag-inconsistent', frag({ id, mf: true, offset: 24 }, d.bytes(8)));
      }
      default: // a first piece whose rest never comes: it times out (and we may hear Time Exceeded)
        return this.injectClass('frag-incomplete', frag({ id: this.uniqueId++, mf: true, offset: 0 }, d.bytes(8 * d.range(1, 20))));
    }
  }

  /** Packets cut short at every length from 0 to 60, and transport headers cut short inside whole IP packets. */
  private truncatedSweep(): void {
    const d = this.dice;
    const whole = d.chance(0.5)
      ? this.validPacket(d.range(41, 200))
      : ipv4({ src: PEER_ADDR, dst: STACK_ADDR, protocol: PROTO_TCP, id: this.nextIpId(), options: d.bytes(40) }, this.validPacket(d.range(41, 200)).subarray(IPV4_HEADER_LEN));
    for (let n = 0; n <= 60; n++) this.injectClass('ip-truncated', whole.slice(0, n));
    const wrap = (protocol: number, body: Uint8Array): Uint8Array => ipv4({ src: PEER_ADDR, dst: STACK_ADDR, protocol, id: this.nextIpId() }, body);
    const seg = whole.subarray((whole[0]! & 0x0f) * 4);
    for (let n = 0; n < 20; n++) this.injectClass('tcp-truncated', wrap(PROTO_TCP, seg.slice(0, n)));
    const dgram = udp({ src: PEER_ADDR, dst: STACK_ADDR, srcPort: 5353, dstPort: UDP_PORT }, d.bytes(20));
    for (let n = 0; n < 8; n++) this.injectClass('udp-truncated', wrap(PROTO_UDP, dgram.slice(0, n)));
    const ping = icmp({ type: 8, code: 0, restOfHeader: 1 }, d.bytes(20));
    for (let n = 0; n < 8; n++) this.injectClass('icmp-truncated', wrap(PROTO_ICMP, ping.slice(0, n)));
  }

  /** ICMP of every type 0 to 255, with random codes and bodies. */
  private icmpTypeSweep(): void {
    const d = this.dice;
    for (let type = 0; type < 256; type++) {
      const m = icmp({ type, code: d.int(256), restOfHeader: d.u32() }, d.bytes(d.range(0, 64)));
      this.inject(`icmp type ${type}`, ipv4({ src: PEER_ADDR, dst: STACK_ADDR, protocol: PROTO_ICMP, id: this.nextIpId() }, m));
    }
  }
}

interface SegmentFields {
  seq: number;
  ack: number;
  flags: number;
  window?: number;
  urgentPointer?: number;
  options?: TcpOptions;
  raw?: Uint8Array;
}

/** NETSTACK_FUZZ_SEED=N replays that one seed (what a failure message asks for). */
const ONLY_SEED = process.env['NETSTACK_FUZZ_SEED'];
const SEEDS = ONLY_SEED !== undefined ? [Number(ONLY_SEED)] : Array.from({ length: 150 * SOAK }, (_, i) => i + 1);
const STEPS = 400;

/** Seeds per test: each batch is its own test, so a slow machine never puts all 150 under one timeout. */
const BATCH = 30;
const BATCHES = Array.from({ length: Math.ceil(SEEDS.length / BATCH) }, (_, i) => SEEDS.slice(i * BATCH, (i + 1) * BATCH));

describe('a hostile peer at the wire never crashes the stack nor grows its memory', () => {
  // Filled by the batches, checked by the last test (tests in a file run in order).
  const seen = new Set<string>();
  const totals: Record<string, number> = {};
  let packets = 0;
  let seedsRun = 0;

  for (const batch of BATCHES) {
    it(
      `seeds ${batch[0]}-${batch[batch.length - 1]} of a semi-valid TCP peer, mixed with malformed IPv4, fragments, ICMP and UDP`,
      async () => {
        for (const seed of batch) {
          // Throws, with the seed and the last packets, at the first broken rule.
          const out = await new WireFuzz(seed).run(STEPS);
          packets += out.packetsIn;
          seedsRun++;
          for (const t of out.states) seen.add(t);
          for (const [k, v] of Object.entries(out.stats)) totals[k] = (totals[k] ?? 0) + v;
        }
      },
      60_000 * SOAK,
    );
  }

  it.skipIf(ONLY_SEED !== undefined)(`the ${SEEDS.length} seeds reached deep into the state machine, not only into the parsers`, () => {
    expect(seedsRun, 'every batch ran').toBe(SEEDS.length);
    for (const t of [
      'CLOSED>SYN-RECEIVED',
      'SYN-RECEIVED>ESTABLISHED',
      'SYN-SENT>ESTABLISHED',
      'SYN-SENT>SYN-RECEIVED',
      'ESTABLISHED>CLOSE-WAIT',
      'ESTABLISHED>FIN-WAIT-1',
      'FIN-WAIT-1>FIN-WAIT-2',
      'FIN-WAIT-1>CLOSING',
      'FIN-WAIT-2>TIME-WAIT',
      'CLOSING>TIME-WAIT',
      'TIME-WAIT>CLOSED',
      'CLOSE-WAIT>LAST-ACK',
      'LAST-ACK>CLOSED',
      'ESTABLISHED>CLOSED',
    ]) {
      expect(seen, `transition ${t} never happened`).toContain(t);
    }
    for (const counter of [
      'tcp.drop.out-of-window',
      'tcp.rst.challenged',
      'tcp.syn.challenged',
      'tcp.drop.ack-unsent',
      'tcp.drop.ack-too-old',
      'tcp.ooo.queued',
      'tcp.persist.probe',
      'tcp.rto',
      'tcp.keepalive.timeout',
      'tcp.fin-wait-2.timeout',
      'tcp.time-wait.reused',
      'tcp.syncookies.sent', // the SYN flood filled the SYN queue
      'tcp.rst.data-on-closed',
      'ip.reassembled',
      'ip.reasm.dropped-memory',
      'ip.frag.out',
      'icmp.unreachable.out',
      'icmp.time-exceeded.out',
    ]) {
      expect(totals[counter] ?? 0, `${counter} never moved`).toBeGreaterThan(0);
    }
    expect(packets).toBeGreaterThan(100 * SEEDS.length);
  });
});

describe('what the fuzz found, reduced to scripts', () => {
  it('tiny in-order segments for a reader that stopped reading share buffers (not one object per byte)', async () => {
    // Before: every segment became a buffer of its own in the receive queue, so a peer sending
    // 1-byte segments into a 1 MiB window made the stack hold about 120 bytes of memory per byte.
    const h = scriptHost({ tcp: { rcvBuf: 65_536 } });
    h.listen({ highWaterMark: 1, onConnection: (s) => s.pause() });
    const s = passiveOpen(h, { synAck: 'S. 0:0(0) ack 1 win 65535 <mss 1460>' });
    for (let at = 1; at <= 3000; at++) s.recv(`P. ${at}:${at + 1}(1) ack 1`);
    await s.do((h) => {
      h.consumed = h.out.length; // (the ACKs along the way are not the point)
    });
    const conn = h.conn!;
    expect(conn.rcvBuffered).toBe(2999); // the paused socket took the first byte
    expect(conn.rcv.chunks).toBe(2); // 2048 + 951 bytes
    h.socket.resume();
    await h.settle();
    expect(h.received).toEqual(h.peerBytes(1, 3001)); // every byte, in order
  });
});
