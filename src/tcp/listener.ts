/**
 * A passive-open endpoint (RFC 9293 LISTEN; gVisor's accept.go): the only thing in LISTEN. A SYN
 * for it makes a new connection, born in SYN-RECEIVED, that waits in the SYN queue until its
 * handshake completes and then in the accept queue until the user takes it. Both queues are
 * bounded by the backlog given to listen(), as Linux bounds them. (SYN cookies will live here.)
 */
import type { Connection } from './connection.js';
import type { TcpSegment } from './segment.js';
import { ACK, RST, SYN } from './segment.js';
import { TcpState } from './state.js';

/** listen()'s backlog when none is given: Node's and nginx's default. */
export const DEFAULT_BACKLOG = 511;

/** What a listener does with a segment for no connection (§3.10.7.2). */
export type ListenVerdict = 'open' | 'reset' | 'ignore' | 'queue-full';

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

  /** §3.10.7.2: SEGMENT ARRIVES in LISTEN. */
  segmentArrives(seg: TcpSegment): ListenVerdict {
    if (seg.flags & RST) return 'ignore'; // "An incoming RST should be ignored."
    if (seg.flags & ACK) return 'reset'; // "<SEQ=SEG.ACK><CTL=RST>"
    if (!(seg.flags & SYN)) return 'ignore';
    // Bounded state: excess SYNs are dropped (the client retransmits). Like Linux, the
    // backlog given to listen() bounds the half-open connections too, not only the accept queue.
    if (this.synQueue >= Math.min(this.backlog, this.maxSynBacklog) || this.acceptQueueFull) return 'queue-full';
    return 'open';
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
