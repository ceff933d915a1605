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
import type { IcmpErrorInfo, IpUpper } from '../ip/layer.js';
import { findEphemeralPort, EPHEMERAL_COUNT } from '../ip/ports.js';
import { TokenBucket } from '../ip/stats.js';
import type { TcpConfig } from './config.js';
import { DEFAULT_TCP_CONFIG } from './config.js';
import type { ConnectionHost, ConnectionInfo } from './connection.js';
import { Connection } from './connection.js';
import { ConnectionTable } from './conntable.js';
import { LinkedSet, SetLink } from '../runtime/linked-set.js';
import { icmpErrorArrives } from './icmp-errors.js';
import { offeredWscaleFor, openFromCookie } from './handshake.js';
import { IsnGenerator } from './isn.js';
import type { TcpLimits } from './limits.js';
import { DEFAULT_TCP_LIMITS } from './limits.js';
import { DEFAULT_BACKLOG, Listener } from './listener.js';
import { MemoryBudget } from './memory.js';
import { ChallengeAckBudget } from './ratelimit.js';
import { SynCookies, cookieTimestamp, decodeCookieTimestamp } from './syncookie.js';
import type { TcpOptions, TcpSegment } from './segment.js';
import { ACK, FIN, RST, SYN, TCP_HEADER_LEN, optionsLength, parseTcp, writeTcp } from './segment.js';
import { seqAdd, seqGt, seqLt } from './seq.js';
import { TcpState } from './state.js';
import { TimerHeap } from './timers.js';
import type { VirtioNetHdr } from '../link/virtio.js';

export interface TransitionEvent {
  conn: Connection;
  from: TcpState;
  to: TcpState;
  cause: string;
}

export interface TcpLayerOptions {
  addr: Ipv4Addr;
  mtu: number;
  /** Hand a segment (with IPv4 header room at offset 0) to the IP layer, with its offload header if any. */
  send: (packet: Uint8Array, dst: Ipv4Addr, now: number, meta?: VirtioNetHdr) => void;
  log?: Logger;
  config?: Partial<TcpConfig>;
  /** Key for RFC 6528 ISNs; random when absent. */
  isnSecret?: Uint8Array;
  /** Source of randomness for ephemeral ports and the challenge-ACK budget (seeded in simulations). */
  random?: () => number;
  /** Caps and rate limits (limits.ts); the rest keep their defaults. */
  limits?: Partial<TcpLimits>;
  /** 32 bytes of SYN-cookie keys; random when absent. */
  cookieSecret?: Uint8Array;
  /**
   * The link does offload (virtio.ts): connections send super-segments of up to 64 KiB that the
   * link cuts into MSS-sized segments, and leave the checksum to it (partial checksums).
   */
  offload?: boolean;
}

export class TcpLayer implements IpUpper, ConnectionHost {
  readonly addr: Ipv4Addr;
  readonly mtu: number;
  readonly config: TcpConfig;
  readonly limits: TcpLimits;
  readonly memory: MemoryBudget;
  /** See TcpLayerOptions.offload; the runtime may switch it (Stack.setOffload). */
  offload: boolean;
  private readonly sendPacket: TcpLayerOptions['send'];
  private readonly log: Logger | undefined;
  private readonly isn: IsnGenerator;
  private readonly random: () => number;
  private readonly conns: ConnectionTable<Connection>;
  /** Connections not in TIME-WAIT, so listing the live ones never walks thousands of TIME-WAITs. */
  private readonly live = new LinkedSet<Connection>();
  /** Connections per state, kept by the transitions (O(1) for /metrics and the status page). */
  private readonly stateCounts = new Map<TcpState, number>();
  private readonly listeners = new Map<number, Listener>();
  /** Orphaned connections (closed by the application, still finishing), oldest first. */
  private readonly orphans = new LinkedSet<Connection>();
  private readonly cookies: SynCookies;
  private dirtyList: Connection[] = [];
  /** Connections to freeze after the flush (TIME-WAIT, see Connection.freeze). */
  private readonly freezeList: Connection[] = [];
  private readonly observers = new Set<(e: TransitionEvent) => void>();
  private readonly counters: Record<string, number> = Object.create(null);
  private readonly timers = new TimerHeap();
  /** RFC 5961 §7: challenge ACKs per second for the whole layer, a random budget each second. */
  private readonly challengeAcks: ChallengeAckBudget;
  /** RSTs for segments to nobody. */
  private readonly rsts: TokenBucket;

  constructor(opts: TcpLayerOptions) {
    this.addr = opts.addr;
    this.mtu = opts.mtu;
    // Keys given as undefined keep their defaults (a spread would overwrite them with undefined).
    const given = Object.fromEntries(Object.entries(opts.config ?? {}).filter(([, v]) => v !== undefined));
    this.config = { ...DEFAULT_TCP_CONFIG, ...given };
    this.sendPacket = opts.send;
    this.log = opts.log;
    this.isn = new IsnGenerator(opts.isnSecret);
    this.conns = new ConnectionTable<Connection>(this.isn.tableSecret());
    this.random = opts.random ?? Math.random;
    const limits = Object.fromEntries(Object.entries(opts.limits ?? {}).filter(([, v]) => v !== undefined));
    this.limits = { ...DEFAULT_TCP_LIMITS, ...limits };
    this.challengeAcks = new ChallengeAckBudget(this.limits.challengeAcksPerSecond, this.random);
    this.rsts = new TokenBucket(this.limits.rstPerSecond, this.limits.rstPerSecond);
    this.cookies = new SynCookies(opts.cookieSecret);
    this.memory = new MemoryBudget(this.limits.memLimit);
    this.offload = opts.offload ?? false;
  }

  // ===================================================================================
  // Receive path
  // ===================================================================================

  receive(ip: Ipv4Header, payload: Uint8Array, now: number, checksumTrusted = false): void {
    this.count('tcp.in');
    if (checksumTrusted) this.count('tcp.in.csum-offloaded');
    const seg = parseTcp(payload, ip.src, ip.dst, !checksumTrusted);
    if ('error' in seg) {
      this.count(`tcp.drop.${seg.error}`);
      if (this.log?.isLevelEnabled('debug')) this.log.debug({ reason: seg.error, src: formatIpv4(ip.src) }, 'tcp: dropped segment');
      return;
    }
    // A malformed option was ignored (segment.ts), not the segment; counted here (Linux ignores it silently).
    if (seg.badOptions) this.count('tcp.bad-option');
    const conn = this.conns.get(ip.src, seg.srcPort, seg.dstPort);
    if (conn) {
      if (conn.state === TcpState.TIME_WAIT && (seg.flags & (SYN | ACK | RST)) === SYN) {
        // RFC 9293 §3.10.7.4 / RFC 6191 / RFC 1122 §4.2.2.13: a new SYN for a 4-tuple in TIME-WAIT
        // may reopen it when its sequence number is beyond the old connection's receive space, or —
        // when both incarnations use timestamps — when its timestamp is newer (RFC 6191 §2).
        const newer = conn.ts?.synIsNewer(seg.options.timestamp?.value) ?? seqGt(seg.seq, conn.rcvNxt);
        if (newer && this.listeners.has(seg.dstPort)) {
          this.count('tcp.time-wait.reused');
          const isnFloor = seqAdd(conn.sndMax, 65536 + 2);
          conn.toClosed('new SYN in TIME-WAIT');
          this.onListen(this.listeners.get(seg.dstPort)!, ip, seg, now, isnFloor);
          return;
        }
      }
      const l = conn.listener;
      if (conn.state === TcpState.SYN_RECEIVED && l && !l.closed && l.acceptQueueFull && seg.flags & ACK && !(seg.flags & (RST | SYN))) {
        this.count('tcp.listen.accept-queue-full'); // see Listener.acceptQueueFull
        return;
      }
      conn.onSegment(seg, now);
      // Processing may have moved a deadline earlier (an ACK that restarts the retransmission
      // timer with an RTO its sample just made smaller, an answered keepalive probe): file the
      // connection again, so the heap never holds it later than its earliest deadline.
      this.reschedule(conn);
      return;
    }
    const listener = this.listeners.get(seg.dstPort);
    if (listener && !listener.closed) {
      this.onListen(listener, ip, seg, now);
      return;
    }
    this.count('tcp.drop.no-connection');
    this.resetForNobody(ip, seg, now);
  }

  /** §3.10.7.2: SEGMENT ARRIVES in LISTEN (the listener decides; a SYN it admits makes a connection). */
  private onListen(l: Listener, ip: Ipv4Header, seg: TcpSegment, now: number, isnFloor?: number): void {
    switch (l.segmentArrives(seg, now)) {
      case 'reset':
        return this.resetForNobody(ip, seg, now);
      case 'queue-full':
        return this.count('tcp.listen.syn-dropped');
      case 'ignore':
        return;
      case 'cookie':
        return this.sendCookie(l, ip, seg, now);
      case 'check-cookie':
        return this.checkCookie(l, ip, seg, now);
      case 'open':
        break;
    }
    if (this.live.size >= this.limits.maxConnections) {
      // Bounded state for the whole stack: refuse, and say so at once (the client gets ECONNREFUSED).
      this.count('tcp.limit.connections');
      return this.resetForNobody(ip, seg, now);
    }
    const conn = new Connection(this, this.config, this.addr, l.port, ip.src, seg.srcPort, this.mtu);
    this.conns.set(conn);
    let iss = this.isn.isn(this.addr, l.port, ip.src, seg.srcPort, now);
    if (isnFloor !== undefined && seqLt(iss, isnFloor)) iss = isnFloor;
    this.count('tcp.passive-open');
    conn.openPassive(l, seg, iss, now, this.isn.tsOffset(this.addr, l.port, ip.src, seg.srcPort));
  }

  /**
   * An ICMP error quoting one of our segments (the IP layer checked that the quote is ours). It is
   * believed only for a connection we hold and a quoted sequence number in SND.UNA..SND.NXT
   * (RFC 5927 §4.1, as Linux checks); icmp-errors.ts decides what it does.
   */
  onIcmpError(err: IcmpErrorInfo): void {
    const q = err.quoted;
    const conn = this.conns.get(err.dst, (q[2]! << 8) | q[3]!, (q[0]! << 8) | q[1]!);
    if (!conn) return this.count('tcp.icmp.no-connection');
    const seq = ((q[4]! << 24) | (q[5]! << 16) | (q[6]! << 8) | q[7]!) >>> 0;
    if (!conn.snd.inFlight(seq)) return this.count('tcp.icmp.out-of-window');
    this.count('tcp.icmp.in');
    if (this.log?.isLevelEnabled('debug')) this.log.debug({ conn: connName(conn), type: err.type, code: err.code, mtu: err.mtu }, 'tcp: icmp error');
    icmpErrorArrives(conn, err);
  }

  /**
   * A SYN cookie SYN-ACK (RFC 4987 §3.6): the listener's SYN queue is full, so nothing is kept;
   * the ISN carries the 4-tuple's keyed hash, the time and the MSS (syncookie.ts). When the SYN
   * carried timestamps, the low bits of our TSval carry its window scale and SACK-permitted, so
   * we can offer both (as Linux); without them the SYN-ACK offers neither, and the window stays
   * unscaled (under 64 KiB) for the connection's life.
   */
  private sendCookie(l: Listener, ip: Ipv4Header, seg: TcpSegment, now: number): void {
    const { iss } = this.cookies.encode(this.addr, l.port, ip.src, seg.srcPort, seg.seq, seg.options.mss, now);
    const ourMss = this.mtu - IPV4_HEADER_LEN - TCP_HEADER_LEN;
    const options: TcpOptions = { mss: ourMss };
    const peerTs = seg.options.timestamp;
    if (peerTs !== undefined && this.config.timestamps) {
      const peerWscale = seg.options.wscale;
      const sackOk = this.config.sack && seg.options.sackPermitted === true;
      const offset = this.isn.tsOffset(this.addr, l.port, ip.src, seg.srcPort);
      options.timestamp = { value: (cookieTimestamp(Math.floor(now), peerWscale, sackOk) + offset) >>> 0, echo: peerTs.value };
      if (peerWscale !== undefined) options.wscale = offeredWscaleFor(this.config, ourMss);
      if (sackOk) options.sackPermitted = true;
    }
    const packet = Buffer.allocUnsafe(IPV4_HEADER_LEN + TCP_HEADER_LEN + optionsLength(options));
    const fields = { srcPort: l.port, dstPort: seg.srcPort, seq: iss, ack: seqAdd(seg.seq, 1), flags: SYN | ACK, window: this.cookieWindow(), options };
    writeTcp(packet, IPV4_HEADER_LEN, fields, 0, ip.dst, ip.src);
    this.count('tcp.syncookies.sent');
    this.count('tcp.out');
    this.sendPacket(packet, ip.src, now);
  }

  /** The window a cookie SYN-ACK offers: unscaled, so at most 65535. */
  private cookieWindow(): number {
    return Math.min(this.config.initialRcvBuf, this.config.rcvBuf, 65535);
  }

  /** An ACK to a listener that recently sent cookies: a valid cookie makes the connection. */
  private checkCookie(l: Listener, ip: Ipv4Header, seg: TcpSegment, now: number): void {
    const syn = this.cookies.check(this.addr, l.port, ip.src, seg.srcPort, seqAdd(seg.seq, -1), seqAdd(seg.ack, -1), now);
    if (!syn) {
      this.count('tcp.syncookies.failed');
      return this.resetForNobody(ip, seg, now); // an ACK in LISTEN: <SEQ=SEG.ACK><CTL=RST>
    }
    if (l.acceptQueueFull || this.live.size >= this.limits.maxConnections) {
      // As for any handshake's last ACK with no room: dropped; the client's data retransmission retries.
      this.count(l.acceptQueueFull ? 'tcp.listen.accept-queue-full' : 'tcp.limit.connections');
      return;
    }
    this.count('tcp.syncookies.accepted');
    this.count('tcp.passive-open');
    const conn = new Connection(this, this.config, this.addr, l.port, ip.src, seg.srcPort, this.mtu);
    this.conns.set(conn);
    l.adopt(conn);
    // The options the SYN had, from the echo of our TSval (its offset taken away), if the ACK
    // carries one; an ACK without timestamps gets none of them (Linux: cookie_timestamp_decode).
    const echo = seg.options.timestamp;
    let synOptions: TcpOptions = { mss: syn.mss };
    let tsOffset: number | undefined;
    if (echo !== undefined && this.config.timestamps) {
      tsOffset = this.isn.tsOffset(this.addr, l.port, ip.src, seg.srcPort);
      const { wscale, sackOk } = decodeCookieTimestamp((echo.echo - tsOffset) >>> 0);
      synOptions = { mss: syn.mss, wscale, sackPermitted: sackOk || undefined, timestamp: { value: echo.value, echo: 0 } };
    }
    openFromCookie(conn, seg, synOptions, tsOffset, this.cookieWindow(), l.port, now);
    conn.onSegment(seg, now);
  }

  /** §3.10.7.1: a segment for no connection gets a RST (unless it is one), at most rstPerSecond. */
  private resetForNobody(ip: Ipv4Header, seg: TcpSegment, now: number): void {
    if (seg.flags & RST) return;
    if (!this.rsts.take(now)) {
      this.count('tcp.rst.limited');
      return;
    }
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

  listen(port: number, backlog = DEFAULT_BACKLOG): Listener {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw codeError('EINVAL', `invalid port ${port}`);
    if (port === 0) port = this.ephemeralPort((p) => !this.listeners.has(p), 'EADDRINUSE', 'no free port to listen on');
    if (this.listeners.has(port)) throw codeError('EADDRINUSE', `listen EADDRINUSE: address already in use :${port}`);
    const l = new Listener(port, Math.max(1, backlog), this.limits.maxSynBacklog, this.limits.synCookies);
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
      if (this.conns.has(remoteAddr, remotePort, port)) throw codeError('EADDRINUSE', `connect EADDRINUSE: local port ${port} in use`);
    } else {
      const free = (p: number) => !this.listeners.has(p) && !this.conns.has(remoteAddr, remotePort, p);
      port = this.ephemeralPort(free, 'EADDRNOTAVAIL', 'connect EADDRNOTAVAIL: no free local port');
    }
    const conn = new Connection(this, this.config, this.addr, port, remoteAddr, remotePort, this.mtu);
    this.conns.set(conn);
    this.count('tcp.active-open');
    conn.openActive(this.isn.isn(this.addr, port, remoteAddr, remotePort, now), now, this.isn.tsOffset(this.addr, port, remoteAddr, remotePort));
    return conn;
  }

  /** A free ephemeral port, searched from a random point (RFC 6056 §3.3.1). */
  private ephemeralPort(isFree: (port: number) => boolean, code: string, message: string): number {
    const port = findEphemeralPort(Math.floor(this.random() * EPHEMERAL_COUNT), isFree);
    if (port === undefined) throw codeError(code, message);
    return port;
  }

  // ===================================================================================
  // Output and timers
  // ===================================================================================

  /** Send what every connection touched since the last flush has pending (one ACK per batch). */
  flush(now: number): void {
    const list = this.dirtyList;
    for (let i = 0; i < list.length; i++) list[i]!.flush(now);
    list.length = 0;
    // Connections in TIME-WAIT whose last ACK is now out keep only a small record (time-wait.ts).
    const tw = this.freezeList;
    for (let i = 0; i < tw.length; i++) tw[i]!.freeze();
    tw.length = 0;
  }

  /** Run every timer that is due. */
  poll(now: number): void {
    this.timers.poll(now, (conn) => {
      conn.onTimer(now);
      this.reschedule(conn);
    });
  }

  nextDeadline(): number {
    return this.timers.nextDeadline();
  }

  // --- ConnectionHost ---

  output(conn: Connection, packet: Uint8Array, now: number, meta?: VirtioNetHdr): void {
    this.sendPacket(packet, conn.remoteAddr, now, meta);
  }

  onTransition(conn: Connection, from: TcpState, to: TcpState, cause: string): void {
    this.count(STATE_COUNTERS[to]);
    if (from !== TcpState.CLOSED) this.stateCounts.set(from, (this.stateCounts.get(from) ?? 1) - 1);
    if (to !== TcpState.CLOSED) this.stateCounts.set(to, (this.stateCounts.get(to) ?? 0) + 1);
    if (to === TcpState.TIME_WAIT || to === TcpState.CLOSED) {
      if (conn.liveLink) this.live.delete(conn.liveLink);
      if (conn.orphanLink) this.orphans.delete(conn.orphanLink); // Linux counts orphans outside TIME-WAIT (that has its own cap)
      conn.liveLink = conn.orphanLink = undefined;
    } else if (!conn.liveLink) this.live.add((conn.liveLink = new SetLink(conn)));
    if (this.log?.isLevelEnabled('debug')) {
      this.log.debug({ conn: connName(conn), from, to, cause }, `tcp: ${from} -> ${to} (${cause})`);
    }
    if (this.observers.size > 0) {
      const e: TransitionEvent = { conn, from, to, cause };
      for (const fn of this.observers) fn(e);
    }
  }

  reschedule(conn: Connection): void {
    this.timers.schedule(conn);
  }

  freezeLater(conn: Connection): void {
    this.freezeList.push(conn);
  }

  markDirty(conn: Connection): void {
    conn.dirty = true;
    this.dirtyList.push(conn);
  }

  release(conn: Connection): void {
    this.conns.delete(conn);
    this.timers.remove(conn);
    conn.listener?.leaveSynQueue(conn);
  }

  established(conn: Connection): void {
    // The listener went away during the handshake: nobody will accept this connection.
    if (conn.listener && !conn.listener.established(conn)) conn.abort(0, 'listener closed');
  }

  allowChallengeAck(now: number): boolean {
    return this.challengeAcks.take(now);
  }

  /** The application let go of `conn`: over maxOrphans, the oldest orphan is reset (Linux: tcp_max_orphans). */
  orphaned(conn: Connection, now: number): void {
    if (conn.state === TcpState.TIME_WAIT || conn.state === TcpState.CLOSED) return;
    this.orphans.add((conn.orphanLink ??= new SetLink(conn)));
    for (let guard = this.orphans.size; this.orphans.size > this.limits.maxOrphans && guard > 0; guard--) {
      const oldest = this.orphans.oldest()!;
      this.orphans.delete(oldest.orphanLink!);
      this.count('tcp.limit.orphans');
      oldest.abort(now, 'too many orphans');
    }
  }

  /** Whether one more connection may enter TIME-WAIT (Linux tcp_max_tw_buckets). */
  admitTimeWait(): boolean {
    if ((this.stateCounts.get(TcpState.TIME_WAIT) ?? 0) < this.limits.maxTimeWait) return true;
    this.count('tcp.limit.time-wait');
    return false;
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

  /**
   * Connections with their TCB variables: live ones first, then TIME-WAIT, at most `limit` after
   * skipping `offset` (a page of /connections: the skipped ones are counted, not described).
   */
  connections(limit = Infinity, offset = 0): ConnectionInfo[] {
    const out: ConnectionInfo[] = [];
    let skip = offset;
    for (const c of this.live) {
      if (out.length >= limit) return out;
      if (skip > 0) skip--;
      else out.push(c.info(formatIpv4));
    }
    for (const c of this.conns.values()) {
      if (out.length >= limit) break;
      if (c.state !== TcpState.TIME_WAIT) continue;
      if (skip > 0) skip--;
      else out.push(c.info(formatIpv4));
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

  stats(): Record<string, number> {
    const s: Record<string, number> = { ...this.counters };
    s['tcp.connections'] = this.conns.size;
    s['tcp.orphans'] = this.orphans.size;
    s['tcp.mem.bytes'] = this.memory.used;
    s['tcp.mem.peak'] = this.memory.peak;
    s['tcp.mem.pressure'] = this.memory.underPressure ? 1 : 0;
    s['tcp.timers'] = this.timers.size;
    return s;
  }

}

/** The counter of each state's entries ("tcp.state.ESTABLISHED"), made once rather than per transition. */
const STATE_COUNTERS = Object.fromEntries(Object.values(TcpState).map((s) => [s, `tcp.state.${s}`])) as Record<TcpState, string>;

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
