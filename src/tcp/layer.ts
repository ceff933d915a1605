/**
 * The TCP layer: demultiplexes segments to connections and listeners, answers segments
 * for nobody with RST, owns the timer heap and the per-batch flush. Sans-I/O: the stack
 * calls `receive`, `poll` and `flush` with `now`; segments leave through `send`.
 */
import type { Logger } from '../runtime/log.js';
import type { Ipv4Addr } from '../ip/addr.js';
import { formatIpv4 } from '../ip/addr.js';
import type { Ipv4Header } from '../ip/ipv4.js';
import { IPV4_HEADER_LEN } from '../ip/ipv4.js';
import type { IpUpper } from '../ip/layer.js';
import type { ConnectionHost, ConnectionInfo, TcpConfig } from './connection.js';
import { Connection, DEFAULT_TCP_CONFIG } from './connection.js';
import { IsnGenerator } from './isn.js';
import type { TcpSegment } from './segment.js';
import { ACK, FIN, RST, SYN, TCP_HEADER_LEN, parseTcp, writeTcp } from './segment.js';
import { seqAdd, seqGt, seqLt } from './seq.js';
import { TcpState } from './state.js';

export interface TransitionEvent {
  conn: Connection;
  from: TcpState;
  to: TcpState;
  cause: string;
}

export interface TcpLayerOptions {
  addr: Ipv4Addr;
  mtu: number;
  /** Hand a segment (with IPv4 header room at offset 0) to the IP layer. */
  send: (packet: Uint8Array, dst: Ipv4Addr, now: number) => void;
  log?: Logger;
  config?: Partial<TcpConfig>;
  /** Key for RFC 6528 ISNs; random when absent. */
  isnSecret?: Uint8Array;
  /** Source of randomness for ephemeral ports (seeded in simulations). */
  random?: () => number;
  /** RFC 5961 §7 challenge-ACK limit, per second, for the whole layer. */
  challengeAcksPerSecond?: number;
  /** Half-open (SYN-RECEIVED) connections per listener. */
  maxSynBacklog?: number;
}

/** A passive-open endpoint (RFC 9293 LISTEN) with a bounded SYN queue and accept queue. */
export class Listener {
  /** Connections in SYN-RECEIVED created by this listener. */
  synQueue = 0;
  /** Established connections not yet taken by `accept()`. */
  readonly acceptQueue: Connection[] = [];
  /** Called when the accept queue becomes non-empty. */
  onAcceptable: (() => void) | undefined;
  closed = false;

  constructor(
    readonly port: number,
    readonly backlog: number,
    readonly maxSynBacklog: number,
  ) {}

  accept(): Connection | undefined {
    for (;;) {
      const c = this.acceptQueue.shift();
      if (!c) return undefined;
      if (c.state !== TcpState.CLOSED) return c;
    }
  }
}

const EPHEMERAL_LOW = 49152; // IANA dynamic ports (RFC 6335 §6)
const EPHEMERAL_HIGH = 65535;

export class TcpLayer implements IpUpper, ConnectionHost {
  readonly addr: Ipv4Addr;
  readonly mtu: number;
  readonly config: TcpConfig;
  private readonly sendPacket: TcpLayerOptions['send'];
  private readonly log: Logger | undefined;
  private readonly isn: IsnGenerator;
  private readonly random: () => number;
  private readonly conns = new Map<string, Connection>();
  /** Connections not in TIME-WAIT, so listing the live ones never walks thousands of TIME-WAITs. */
  private readonly live = new Set<Connection>();
  /** Connections per state, kept by the transitions (O(1) for /metrics and the status page). */
  private readonly stateCounts = new Map<TcpState, number>();
  private readonly listeners = new Map<number, Listener>();
  private readonly maxSynBacklog: number;
  private dirtyList: Connection[] = [];
  private readonly observers = new Set<(e: TransitionEvent) => void>();
  private readonly counters: Record<string, number> = Object.create(null);
  // Timer heap: parallel arrays (deadline, connection); stale entries are skipped lazily.
  private heapAt: number[] = [];
  private heapConn: Connection[] = [];
  // RFC 5961 §7 challenge-ACK token bucket.
  private readonly challengeRate: number;
  private challengeTokens: number;
  private challengeStamp = 0;

  constructor(opts: TcpLayerOptions) {
    this.addr = opts.addr;
    this.mtu = opts.mtu;
    // Keys given as undefined keep their defaults (a spread would overwrite them with undefined).
    const given = Object.fromEntries(Object.entries(opts.config ?? {}).filter(([, v]) => v !== undefined));
    this.config = { ...DEFAULT_TCP_CONFIG, ...given };
    this.sendPacket = opts.send;
    this.log = opts.log;
    this.isn = new IsnGenerator(opts.isnSecret);
    this.random = opts.random ?? Math.random;
    this.challengeRate = opts.challengeAcksPerSecond ?? 1000;
    this.challengeTokens = this.challengeRate;
    this.maxSynBacklog = opts.maxSynBacklog ?? 256;
  }

  // ===================================================================================
  // Receive path
  // ===================================================================================

  receive(ip: Ipv4Header, payload: Uint8Array, now: number): void {
    this.count('tcp.in');
    const seg = parseTcp(payload, ip.src, ip.dst);
    if ('error' in seg) {
      this.count(`tcp.drop.${seg.error}`);
      if (this.log?.isLevelEnabled('debug')) this.log.debug({ reason: seg.error, src: formatIpv4(ip.src) }, 'tcp: dropped segment');
      return;
    }
    const key = connKey(ip.src, seg.srcPort, seg.dstPort);
    const conn = this.conns.get(key);
    if (conn) {
      if (conn.state === TcpState.TIME_WAIT && (seg.flags & (SYN | ACK | RST)) === SYN) {
        // RFC 9293 §3.10.7.4 / RFC 6191 / RFC 1122 §4.2.2.13: a new SYN for a 4-tuple in TIME-WAIT
        // may reopen it when its sequence number is beyond the old connection's receive space.
        if (seqGt(seg.seq, conn.rcvNxt) && this.listeners.has(seg.dstPort)) {
          this.count('tcp.time-wait.reused');
          const isnFloor = seqAdd(conn.sndMax, 65536 + 2);
          conn.toClosed('new SYN in TIME-WAIT');
          this.onListen(this.listeners.get(seg.dstPort)!, key, ip, seg, now, isnFloor);
          return;
        }
      }
      if (conn.state === TcpState.SYN_RECEIVED && conn.listener && seg.flags & ACK && !(seg.flags & (RST | SYN))) {
        const l = this.listeners.get(conn.listener.port);
        if (l && l.acceptQueue.length >= l.backlog) {
          // Accept queue full: ignore the handshake's final ACK, as Linux does; our SYN-ACK
          // retransmission gives the client another chance later.
          this.count('tcp.listen.accept-queue-full');
          return;
        }
      }
      conn.onSegment(seg, now);
      return;
    }
    const listener = this.listeners.get(seg.dstPort);
    if (listener && !listener.closed) {
      this.onListen(listener, key, ip, seg, now);
      return;
    }
    this.count('tcp.drop.no-connection');
    this.resetForNobody(ip, seg, now);
  }

  /** §3.10.7.2: SEGMENT ARRIVES in LISTEN. */
  private onListen(l: Listener, key: string, ip: Ipv4Header, seg: TcpSegment, now: number, isnFloor?: number): void {
    if (seg.flags & RST) return; // "An incoming RST should be ignored."
    if (seg.flags & ACK) {
      this.resetForNobody(ip, seg, now); // "<SEQ=SEG.ACK><CTL=RST>"
      return;
    }
    if (!(seg.flags & SYN)) return;
    if (l.synQueue >= Math.min(l.backlog, l.maxSynBacklog) || l.acceptQueue.length >= l.backlog) {
      // Bounded state: excess SYNs are dropped (the client retransmits). Like Linux, the
      // backlog given to listen() bounds the half-open connections too, not only the accept queue.
      this.count('tcp.listen.syn-dropped');
      return;
    }
    const conn = new Connection(this, this.config, this.addr, l.port, ip.src, seg.srcPort, this.mtu, key);
    conn.listener = l;
    conn.inSynQueue = true;
    l.synQueue++;
    this.conns.set(key, conn);
    let iss = this.isn.isn(this.addr, l.port, ip.src, seg.srcPort, now);
    if (isnFloor !== undefined && seqLt(iss, isnFloor)) iss = isnFloor;
    this.count('tcp.passive-open');
    conn.openPassive(seg, iss, now);
  }

  /** §3.10.7.1: a segment for no connection gets a RST (unless it is one). */
  private resetForNobody(ip: Ipv4Header, seg: TcpSegment, now: number): void {
    if (seg.flags & RST) return;
    let seq: number;
    let ack: number;
    let flags: number;
    if (seg.flags & ACK) {
      seq = seg.ack; // <SEQ=SEG.ACK><CTL=RST>
      ack = 0;
      flags = RST;
    } else {
      seq = 0; // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
      ack = seqAdd(seg.seq, seg.payload.length + (seg.flags & SYN ? 1 : 0) + (seg.flags & FIN ? 1 : 0));
      flags = RST | ACK;
    }
    const packet = Buffer.allocUnsafe(IPV4_HEADER_LEN + TCP_HEADER_LEN);
    writeTcp(packet, IPV4_HEADER_LEN, { srcPort: seg.dstPort, dstPort: seg.srcPort, seq, ack, flags, window: 0 }, 0, ip.dst, ip.src);
    this.count('tcp.rst.out');
    this.count('tcp.out');
    this.sendPacket(packet, ip.src, now);
  }

  // ===================================================================================
  // User-facing operations
  // ===================================================================================

  listen(port: number, backlog = 511): Listener {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw codeError('EINVAL', `invalid port ${port}`);
    if (port === 0) port = this.pickListenPort();
    if (this.listeners.has(port)) throw codeError('EADDRINUSE', `listen EADDRINUSE: address already in use :${port}`);
    const l = new Listener(port, Math.max(1, backlog), this.maxSynBacklog);
    this.listeners.set(port, l);
    return l;
  }

  unlisten(l: Listener): void {
    l.closed = true;
    if (this.listeners.get(l.port) === l) this.listeners.delete(l.port);
  }

  /** Active open to remoteAddr:remotePort. */
  connect(remoteAddr: Ipv4Addr, remotePort: number, now: number, localPort?: number): Connection {
    if (!Number.isInteger(remotePort) || remotePort <= 0 || remotePort > 65535) throw codeError('EINVAL', `invalid port ${remotePort}`);
    let port: number;
    if (localPort !== undefined && localPort !== 0) {
      port = localPort;
      if (this.conns.has(connKey(remoteAddr, remotePort, port))) throw codeError('EADDRINUSE', `connect EADDRINUSE: local port ${port} in use`);
    } else {
      port = this.pickEphemeral(remoteAddr, remotePort);
    }
    const key = connKey(remoteAddr, remotePort, port);
    const conn = new Connection(this, this.config, this.addr, port, remoteAddr, remotePort, this.mtu, key);
    this.conns.set(key, conn);
    this.count('tcp.active-open');
    conn.openActive(this.isn.isn(this.addr, port, remoteAddr, remotePort, now), now);
    return conn;
  }

  private pickEphemeral(remoteAddr: Ipv4Addr, remotePort: number): number {
    const span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
    const start = Math.floor(this.random() * span);
    for (let i = 0; i < span; i++) {
      const port = EPHEMERAL_LOW + ((start + i) % span);
      if (this.listeners.has(port)) continue;
      if (!this.conns.has(connKey(remoteAddr, remotePort, port))) return port;
    }
    throw codeError('EADDRNOTAVAIL', 'connect EADDRNOTAVAIL: no free local port');
  }

  private pickListenPort(): number {
    const span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
    const start = Math.floor(this.random() * span);
    for (let i = 0; i < span; i++) {
      const port = EPHEMERAL_LOW + ((start + i) % span);
      if (!this.listeners.has(port)) return port;
    }
    throw codeError('EADDRINUSE', 'no free port to listen on');
  }

  // ===================================================================================
  // Output and timers
  // ===================================================================================

  /** Send what every connection touched since the last flush has pending (one ACK per batch). */
  flush(now: number): void {
    const list = this.dirtyList;
    for (let i = 0; i < list.length; i++) list[i]!.flush(now);
    list.length = 0;
  }

  /** Run every timer that is due. */
  poll(now: number): void {
    let guard = this.heapAt.length + 16;
    while (this.heapAt.length > 0 && this.heapAt[0]! <= now && guard-- > 0) {
      const at = this.heapAt[0]!;
      const conn = this.heapPop();
      if (conn.heapAt !== at) continue; // stale: superseded by an earlier entry already run
      conn.heapAt = Infinity;
      if (conn.state === TcpState.CLOSED) continue;
      conn.onTimer(now);
      this.reschedule(conn);
    }
  }

  nextDeadline(): number {
    while (this.heapAt.length > 0) {
      const conn = this.heapConn[0]!;
      if (conn.heapAt === this.heapAt[0] && conn.state !== TcpState.CLOSED) return this.heapAt[0]!;
      this.heapPop();
    }
    return Infinity;
  }

  // --- ConnectionHost ---

  output(conn: Connection, packet: Uint8Array, now: number): void {
    this.sendPacket(packet, conn.remoteAddr, now);
  }

  onTransition(conn: Connection, from: TcpState, to: TcpState, cause: string): void {
    this.count(`tcp.state.${to}`);
    if (from !== TcpState.CLOSED) this.stateCounts.set(from, (this.stateCounts.get(from) ?? 1) - 1);
    if (to !== TcpState.CLOSED) this.stateCounts.set(to, (this.stateCounts.get(to) ?? 0) + 1);
    if (to === TcpState.TIME_WAIT || to === TcpState.CLOSED) this.live.delete(conn);
    else this.live.add(conn);
    if (this.log?.isLevelEnabled('debug')) {
      this.log.debug({ conn: connName(conn), from, to, cause }, `tcp: ${from} -> ${to} (${cause})`);
    }
    if (this.observers.size > 0) {
      const e: TransitionEvent = { conn, from, to, cause };
      for (const fn of this.observers) fn(e);
    }
  }

  reschedule(conn: Connection): void {
    const at = conn.nextDeadline();
    if (at < conn.heapAt) {
      conn.heapAt = at;
      this.heapPush(at, conn);
      // Stale entries pile up when deadlines keep moving earlier; rebuild when they dominate.
      if (this.heapAt.length > 4 * this.conns.size + 1024) this.rebuildHeap();
    }
  }

  markDirty(conn: Connection): void {
    conn.dirty = true;
    this.dirtyList.push(conn);
  }

  release(conn: Connection): void {
    if (this.conns.get(conn.key) === conn) this.conns.delete(conn.key);
    conn.heapAt = Infinity;
    this.leaveSynQueue(conn);
  }

  private leaveSynQueue(conn: Connection): void {
    if (!conn.inSynQueue) return;
    conn.inSynQueue = false;
    const l = conn.listener as Listener;
    l.synQueue--;
  }

  established(conn: Connection): void {
    const l = conn.listener as Listener | undefined;
    if (!l) return;
    this.leaveSynQueue(conn);
    if (l.closed) {
      // The listener went away during the handshake: nobody will accept this connection.
      conn.abort(0, 'listener closed');
      return;
    }
    l.acceptQueue.push(conn);
    l.onAcceptable?.();
  }

  allowChallengeAck(now: number): boolean {
    const elapsed = now - this.challengeStamp;
    if (elapsed > 0) {
      this.challengeTokens = Math.min(this.challengeRate, this.challengeTokens + (elapsed * this.challengeRate) / 1000);
      this.challengeStamp = now;
    }
    if (this.challengeTokens < 1) return false;
    this.challengeTokens -= 1;
    return true;
  }

  count(name: string, n = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + n;
  }

  // ===================================================================================
  // Introspection
  // ===================================================================================

  /** Subscribe to every state transition. Returns an unsubscribe function. */
  onTransitionEvent(fn: (e: TransitionEvent) => void): () => void {
    this.observers.add(fn);
    return () => this.observers.delete(fn);
  }

  /** Connections with their TCB variables: live ones first, then TIME-WAIT, at most `limit`. */
  connections(limit = Infinity): ConnectionInfo[] {
    const out: ConnectionInfo[] = [];
    for (const c of this.live) {
      if (out.length >= limit) return out;
      out.push(c.info(formatIpv4));
    }
    for (const c of this.conns.values()) {
      if (out.length >= limit) break;
      if (c.state === TcpState.TIME_WAIT) out.push(c.info(formatIpv4));
    }
    return out;
  }

  /** How many connections are in each state (states with none are left out). */
  connectionStates(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [state, n] of this.stateCounts) if (n > 0) out[state] = n;
    return out;
  }

  /** Live connection objects (for tests and the runtime). */
  connectionList(): Connection[] {
    return [...this.conns.values()];
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  listenerPorts(): number[] {
    return [...this.listeners.keys()];
  }

  stats(): Record<string, number> {
    const s: Record<string, number> = { ...this.counters };
    s['tcp.connections'] = this.conns.size;
    s['tcp.timers'] = this.heapAt.length;
    return s;
  }

  // --- binary heap on (heapAt, heapConn) ---

  private heapPush(at: number, conn: Connection): void {
    const A = this.heapAt;
    const C = this.heapConn;
    let i = A.length;
    A.push(at);
    C.push(conn);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (A[p]! <= at) break;
      A[i] = A[p]!;
      C[i] = C[p]!;
      i = p;
    }
    A[i] = at;
    C[i] = conn;
  }

  private heapPop(): Connection {
    const A = this.heapAt;
    const C = this.heapConn;
    const top = C[0]!;
    const lastAt = A.pop()!;
    const lastConn = C.pop()!;
    const n = A.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && A[r]! < A[l]! ? r : l;
        if (lastAt <= A[c]!) break;
        A[i] = A[c]!;
        C[i] = C[c]!;
        i = c;
      }
      A[i] = lastAt;
      C[i] = lastConn;
    }
    return top;
  }

  private rebuildHeap(): void {
    this.heapAt = [];
    this.heapConn = [];
    for (const c of this.conns.values()) {
      c.heapAt = Infinity;
      const at = c.nextDeadline();
      if (at < Infinity) {
        c.heapAt = at;
        this.heapPush(at, c);
      }
    }
  }
}

export function connKey(remoteAddr: Ipv4Addr, remotePort: number, localPort: number): string {
  return `${remoteAddr}:${remotePort}:${localPort}`;
}

/** "10.77.0.1:51234 > 10.77.0.2:80": the peer first, as the trace shows it. */
export function connName(conn: Connection): string {
  return `${formatIpv4(conn.remoteAddr)}:${conn.remotePort} > ${formatIpv4(conn.localAddr)}:${conn.localPort}`;
}

/** One readable trace line for a transition. */
export function formatTransition(e: TransitionEvent): string {
  return `${connName(e.conn)}  ${e.from} -> ${e.to}  (${e.cause})`;
}

export function codeError(code: string, message: string): Error & { code: string } {
  const err = new Error(message) as Error & { code: string };
  err.code = code;
  return err;
}
