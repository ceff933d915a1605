/**
 * TCP's timers, as deadlines (absolute ms; Infinity = off) rather than callbacks: a connection
 * keeps one of each kind (`Deadlines`), the layer keeps one heap of connections ordered by their
 * earliest deadline (`TimerHeap`), and the runtime arms one real timer for the earliest of all.
 * `runTimers` is what happens when a connection's deadline comes: it hands each expired deadline
 * to its concern (the sender for retransmission, RACK-TLP and persist, the receiver for the delayed ACK),
 * and handles keepalive, FIN-WAIT-2 and TIME-WAIT here.
 */
import type { Connection } from './connection.js';
import { seqAdd } from './seq.js';
import { ACK } from './segment.js';
import { TcpState, isSynchronized } from './state.js';
import { DeadlineHeap } from '../runtime/deadline-heap.js';

/** One connection's deadlines. */
export class Deadlines {
  /** RFC 6298 retransmission timer (also the SYN / SYN-ACK retransmission). */
  retransmitAt = Infinity;
  /** RFC 9293 §3.8.6.1 zero-window probe, and sender SWS avoidance's override (RFC 1122 §4.2.3.4). */
  persistAt = Infinity;
  /** RFC 1122 §4.2.3.2 delayed ACK. */
  delayedAckAt = Infinity;
  /** RFC 1122 §4.2.3.6 keepalive. */
  keepaliveAt = Infinity;
  /** FIN-WAIT-2 timeout of an orphaned connection (Linux tcp_fin_timeout). */
  finWait2At = Infinity;
  /** End of TIME-WAIT (2*MSL, RFC 9293 §3.4.2). */
  timeWaitUntil = Infinity;
  /** RACK's reordering timer: look for losses again once the reordering window has passed (RFC 8985 §6.3). */
  reorderAt = Infinity;
  /** Tail loss probe (RFC 8985 §7.2), before the retransmission timer. */
  probeAt = Infinity;

  next(): number {
    return Math.min(
      this.retransmitAt,
      this.persistAt,
      this.delayedAckAt,
      this.keepaliveAt,
      this.finWait2At,
      this.timeWaitUntil,
      this.reorderAt,
      this.probeAt,
    );
  }

  clear(): void {
    this.retransmitAt = this.persistAt = this.delayedAckAt = this.keepaliveAt = this.finWait2At = this.timeWaitUntil = Infinity;
    this.reorderAt = this.probeAt = Infinity;
  }
}

/** Keepalive settings and the count of unanswered probes (keepalive or zero-window). */
export class Keepalive {
  enabled = false;
  idle: number;
  /** Probes sent since the peer last answered (RFC 1122 §4.2.3.6; also counts zero-window probes). */
  probes = 0;

  constructor(idle: number) {
    this.idle = idle;
  }
}

/** Run every deadline of `c` that is due at `now`. */
export function runTimers(c: Connection, now: number): void {
  const d = c.timers;
  if (now >= d.timeWaitUntil) {
    d.timeWaitUntil = Infinity;
    c.toClosed('2*MSL timeout');
    return;
  }
  if (now >= d.finWait2At) {
    d.finWait2At = Infinity;
    c.host.count('tcp.fin-wait-2.timeout');
    c.toClosed('FIN-WAIT-2 timeout');
    return;
  }
  if (now >= d.reorderAt) {
    d.reorderAt = Infinity;
    if (isSynchronized(c.state)) c.snd.onReorderTimeout(now);
  }
  if (now >= d.probeAt) {
    d.probeAt = Infinity;
    // The probe goes before the RTO; if both are due, the RTO's go-back handles it.
    if (isSynchronized(c.state) && now < d.retransmitAt) c.snd.onProbeTimeout(now);
  }
  if (now >= d.retransmitAt) {
    d.retransmitAt = Infinity;
    c.snd.onRetransmitTimeout(now);
    if (c.state === TcpState.CLOSED) return;
  }
  if (now >= d.persistAt) {
    d.persistAt = Infinity;
    c.snd.onPersistTimeout(now);
    if (c.state === TcpState.CLOSED) return;
  }
  if (now >= d.delayedAckAt) {
    d.delayedAckAt = Infinity;
    c.scheduleAck();
  }
  if (now >= d.keepaliveAt) {
    d.keepaliveAt = Infinity;
    onKeepaliveTimeout(c, now);
  }
}

/**
 * Any acceptable ACK shows the peer is alive: zero-window probes and keepalives are answered.
 * Only an acceptable one: an out-of-window segment (anyone who knows the 4-tuple can send one)
 * must not keep a dead connection's keepalive quiet. Linux counts idle time from the last data
 * or acceptable ACK the same way (keepalive_time_elapsed: icsk_ack.lrcvtime, rcv_tstamp).
 */
export function peerAlive(c: Connection, now: number): void {
  c.lastReceived = now;
  c.keepalive.probes = 0;
  // After an answered probe this is earlier than where the timer heap holds the connection when
  // the probe interval (75 s by default) exceeds the idle time: the layer files it again after
  // the segment (TcpLayer.receive).
  if (c.keepalive.enabled) c.timers.keepaliveAt = now + c.keepalive.idle;
}

/** RFC 1122 §4.2.3.6: a keepalive probe is <SEQ=SND.NXT-1> with no data. */
function onKeepaliveTimeout(c: Connection, now: number): void {
  const ka = c.keepalive;
  if (!ka.enabled || !isSynchronized(c.state) || c.state === TcpState.TIME_WAIT) return;
  if (c.snd.max !== c.snd.una || c.snd.buffer.length > 0) {
    // Not idle: data is in flight or waiting, and the retransmission or persist timer watches
    // the peer (RFC 1122 §4.2.3.6 probes an idle connection; Linux does the same).
    c.timers.keepaliveAt = now + ka.idle;
    c.host.reschedule(c);
    return;
  }
  if (ka.probes >= c.config.keepaliveCount) {
    c.host.count('tcp.keepalive.timeout');
    c.timedOut('keepalive');
    return;
  }
  ka.probes++;
  c.host.count('tcp.keepalive.probe');
  c.emitSegment(seqAdd(c.snd.nxt, -1), 0, ACK, now);
  c.timers.keepaliveAt = now + c.config.keepaliveInterval;
  c.host.reschedule(c);
}

/**
 * The layer's timer heap: connections ordered by their earliest deadline (runtime/deadline-heap.ts),
 * each filed at most once. A connection remembers the deadline it is filed under (`heapAt`): one
 * that moved earlier is moved up in place; one that moved later is left where it is, runs early,
 * finds nothing due, and is filed again (cheaper than moving it on every ACK). A connection that
 * closes is taken out at once (`remove`), so the heap never holds a dead connection.
 */
export class TimerHeap {
  private readonly heap = new DeadlineHeap<Connection>();

  get size(): number {
    return this.heap.size;
  }

  /** File `c` under its current earliest deadline if that moved earlier. Returns true when filed. */
  schedule(c: Connection): boolean {
    const at = c.nextDeadline();
    if (at >= c.heapAt) return false;
    c.heapAt = at;
    this.heap.set(at, c);
    return true;
  }

  /** Take `c` out: it closed. */
  remove(c: Connection): void {
    this.heap.remove(c);
    c.heapAt = Infinity;
  }

  /** Run the timers of every connection that is due (bounded: each connection at most once). */
  poll(now: number, run: (c: Connection) => void): void {
    const h = this.heap;
    let guard = h.size;
    while (h.size > 0 && h.nextAt <= now && guard-- > 0) {
      const c = h.pop();
      c.heapAt = Infinity;
      if (c.state === TcpState.CLOSED) continue;
      run(c);
    }
  }

  nextDeadline(): number {
    return this.heap.nextAt;
  }
}
