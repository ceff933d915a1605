/**
 * A passive-open endpoint (RFC 9293 LISTEN; gVisor's accept.go): the only thing in LISTEN. A SYN
 * for it makes a new connection, born in SYN-RECEIVED, that waits in the SYN queue until its
 * handshake completes and then in the accept queue until the user takes it. Both queues are
 * bounded by the backlog given to listen(), as Linux bounds them. When the SYN queue is full, a
 * SYN is answered with a SYN cookie instead (syncookie.ts): no state until the client's ACK
 * comes back with it (RFC 4987 §3.6).
 */
import type { Connection } from './connection.js';
import type { TcpSegment } from './segment.js';
import { ACK, RST, SYN } from './segment.js';
import { TcpState } from './state.js';
import { COOKIE_MAX_AGE, COOKIE_PERIOD_MS } from './syncookie.js';

/** listen()'s backlog when none is given: Node's and nginx's default. */
export const DEFAULT_BACKLOG = 511;

/** SYN-ACK retransmissions a half-open connection keeps when the SYN queue is more than half full
 *  (Linux cuts tcp_synack_retries, 5, step by step down to 2 as the queue fills with old entries). */
export const SYNACK_RETRIES_UNDER_PRESSURE = 2;

/**
 * What a listener does with a segment for no connection (§3.10.7.2): open a connection, answer
 * a SYN with a cookie ('cookie'), check an ACK for one ('check-cookie'), reset, ignore, or drop
 * a SYN for want of room ('queue-full').
 */
export type ListenVerdict = 'open' | 'cookie' | 'check-cookie' | 'reset' | 'ignore' | 'queue-full';

export class Listener {
  /** Connections in SYN-RECEIVED created by this listener. */
  synQueue = 0;
  /** Established connections not yet taken by `accept()`. */
  readonly acceptQueue: Connection[] = [];
  /** Called when the accept queue becomes non-empty. */
  onAcceptable: (() => void) | undefined;
  closed = false;
  /** When this listener last answered with a SYN cookie (-Infinity: never). */
  private lastCookieAt = -Infinity;

  constructor(
    readonly port: number,
    readonly backlog: number,
    readonly maxSynBacklog: number,
    /** Answer SYNs with cookies when the SYN queue is full (else drop them); 'always': every SYN. */
    readonly synCookies: boolean | 'always' = true,
  ) {}

  /** §3.10.7.2: SEGMENT ARRIVES in LISTEN. */
  segmentArrives(seg: TcpSegment, now: number): ListenVerdict {
    if (seg.flags & RST) return 'ignore'; // "An incoming RST should be ignored."
    if (seg.flags & ACK) {
      // An ACK may return one of our SYN cookies, but only check while cookies are recent: a
      // listener that never overflowed treats every stray ACK as the RFC says (Linux does the
      // same, tcp_synq_no_recent_overflow).
      if (!(seg.flags & SYN) && now - this.lastCookieAt < COOKIE_MAX_AGE * COOKIE_PERIOD_MS) return 'check-cookie';
      return 'reset'; // "<SEQ=SEG.ACK><CTL=RST>"
    }
    if (!(seg.flags & SYN)) return 'ignore';
    // Bounded state: no room for another established connection means the SYN is dropped (the
    // client retransmits). Like Linux, the backlog given to listen() bounds the half-open
    // connections too; when they fill it, a SYN gets a cookie instead of a queue entry.
    if (this.acceptQueueFull) return 'queue-full';
    if (this.synQueueFull || this.synCookies === 'always') {
      if (!this.synCookies) return 'queue-full';
      this.lastCookieAt = now;
      return 'cookie';
    }
    return 'open';
  }

  get synQueueFull(): boolean {
    return this.synQueue >= Math.min(this.backlog, this.maxSynBacklog);
  }

  /** More than half the SYN queue is taken (by at least 4): half-open connections retransmit less. */
  get synQueuePressure(): boolean {
    return 2 * this.synQueue > Math.max(8, Math.min(this.backlog, this.maxSynBacklog));
  }

  /** A connection this listener's SYN created: it counts in the SYN queue until established. */
  adopt(conn: Connection): void {
    conn.listener = this;
    conn.inSynQueue = true;
    this.synQueue++;
  }

  /** No room for another established connection: the handshake's final ACK is ignored, as Linux
   *  does, and our SYN-ACK retransmission gives the client another chance later. */
  get acceptQueueFull(): boolean {
    return this.acceptQueue.length >= this.backlog;
  }

  leaveSynQueue(conn: Connection): void {
    if (!conn.inSynQueue) return;
    conn.inSynQueue = false;
    this.synQueue--;
  }

  /** The handshake of `conn` completed. Returns false when nobody will accept it (listener closed). */
  established(conn: Connection): boolean {
    this.leaveSynQueue(conn);
    if (this.closed) return false;
    this.acceptQueue.push(conn);
    this.onAcceptable?.();
    return true;
  }

  accept(): Connection | undefined {
    for (;;) {
      const c = this.acceptQueue.shift();
      if (!c) return undefined;
      if (c.state !== TcpState.CLOSED) return c;
    }
  }
}
