/**
 * What a connection keeps while it waits out TIME-WAIT (RFC 9293 §3.10.7.4: 2·MSL, 60 s here).
 *
 * A server that closes first (every HTTP server with `Connection: close`) holds one TIME-WAIT
 * connection per recent client for a minute: up to limits.maxTimeWait of them, each otherwise
 * keeping its sender, receiver, congestion and RTT state, timers and keepalive — 1.76 KB of heap
 * that V8 promotes and then marks at every full GC. Linux keeps a small `inet_timewait_sock`
 * instead of the socket for the same reason.
 *
 * Here the Connection object stays (users, the live view and the layer's tables keep knowing it),
 * but once its last ACK is out it lets go of those parts (`Connection.freeze`) and keeps this
 * record of what TIME-WAIT's rules read: the sequence and window variables, the receive window
 * it offered, and the numbers /connections shows. The timestamps state (RFC 7323 PAWS, RFC 6191
 * reuse) stays on the connection as it is. A segment that arrives for it, or anything else that
 * reaches for those parts, rebuilds them from this record first (`Connection.thaw`), so TIME-WAIT
 * runs the same code as every other state; the layer freezes it again after its next flush.
 *
 * Sequence numbers are kept as signed 32-bit integers: V8 stores those unboxed in the object,
 * where a number at or above 2^31 would take a separate heap number each.
 */
import type { Receiver } from './receiver.js';
import type { Sender } from './sender.js';

export class FrozenTimeWait {
  // Sender (RFC 9293 §3.3.1), `| 0`.
  readonly iss: number;
  readonly sndUna: number;
  readonly sndNxt: number;
  readonly sndMax: number;
  readonly sndWnd: number;
  readonly wl1: number;
  readonly wl2: number;
  readonly maxWnd: number;
  readonly sndWscale: number;
  readonly sndMss: number;
  readonly pathMss: number;
  readonly retransmits: number;
  // Receiver, `| 0` for the sequence numbers.
  readonly irs: number;
  readonly rcvNxt: number;
  readonly rcvAdv: number;
  readonly rcvWscale: number;
  readonly rcvMss: number;
  readonly rcvBufSize: number;
  readonly bytesReceived: number;
  /** The peer's FIN sequence number if it came out of order, `| 0`; undefined otherwise. */
  readonly peerFinSeq: number | undefined;
  // Timers and keepalive.
  readonly timeWaitUntil: number;
  readonly keepaliveEnabled: boolean;
  readonly keepaliveIdle: number;
  // What /connections shows of a connection in TIME-WAIT (its last values).
  readonly srtt: number;
  readonly rto: number;
  readonly cwnd: number;
  readonly ssthresh: number;

  constructor(snd: Sender, rcv: Receiver, timeWaitUntil: number, keepalive: { enabled: boolean; idle: number }) {
    this.iss = snd.iss | 0;
    this.sndUna = snd.una | 0;
    this.sndNxt = snd.nxt | 0;
    this.sndMax = snd.max | 0;
    this.sndWnd = snd.wnd;
    this.wl1 = snd.wl1 | 0;
    this.wl2 = snd.wl2 | 0;
    this.maxWnd = snd.maxWnd;
    this.sndWscale = snd.wscale;
    this.sndMss = snd.mss;
    this.pathMss = snd.pathMss;
    this.retransmits = snd.retransmits;
    this.irs = rcv.irs | 0;
    this.rcvNxt = rcv.nxt | 0;
    this.rcvAdv = rcv.adv | 0;
    this.rcvWscale = rcv.wscale;
    this.rcvMss = rcv.mss;
    this.rcvBufSize = rcv.bufSize;
    this.bytesReceived = rcv.bytesReceived;
    this.peerFinSeq = rcv.peerFinSeq === undefined ? undefined : rcv.peerFinSeq | 0;
    this.timeWaitUntil = timeWaitUntil;
    this.keepaliveEnabled = keepalive.enabled;
    this.keepaliveIdle = keepalive.idle;
    this.srtt = snd.rto.srtt ?? 0;
    this.rto = snd.rto.rto;
    this.cwnd = snd.cc.cwnd;
    this.ssthresh = snd.cc.ssthresh;
  }

  /** Put the kept variables back into a fresh sender and receiver (made for this connection). */
  restore(snd: Sender, rcv: Receiver): void {
    snd.iss = this.iss >>> 0;
    snd.una = this.sndUna >>> 0;
    snd.nxt = this.sndNxt >>> 0;
    snd.max = this.sndMax >>> 0;
    snd.wnd = this.sndWnd;
    snd.wl1 = this.wl1 >>> 0;
    snd.wl2 = this.wl2 >>> 0;
    snd.maxWnd = this.maxWnd;
    snd.wscale = this.sndWscale;
    snd.mss = this.sndMss;
    snd.pathMss = this.pathMss;
    snd.retransmits = this.retransmits;
    rcv.irs = this.irs >>> 0;
    rcv.nxt = this.rcvNxt >>> 0;
    rcv.adv = this.rcvAdv >>> 0;
    rcv.wscale = this.rcvWscale;
    rcv.bufSize = this.rcvBufSize;
    rcv.bytesReceived = this.bytesReceived;
    rcv.peerFinSeq = this.peerFinSeq === undefined ? undefined : this.peerFinSeq >>> 0;
  }
}
