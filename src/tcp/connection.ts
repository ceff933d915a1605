/**
 * One TCP connection: the transmission control block (TCB) of RFC 9293 §3.3.1 and the
 * event processing of §3.10. Sans-I/O: segments and `now` come in; segments go out through
 * the host (the TcpLayer), and the connection's deadlines are read by the runtime.
 *
 * Reading guide:
 *   - `transition()` is the only place the state changes.
 *   - `onSegment()` follows RFC 9293 §3.10.7.4 step by step ("first", "second", ... "eighth").
 *   - `flush()` is the output routine: data as window and cwnd allow, FIN, or a bare ACK.
 *   - `onTimer()` handles every deadline: retransmission, persist, delayed ACK, keepalive,
 *     FIN-WAIT-2 and TIME-WAIT.
 */
import type { CongestionControl, CongestionFactory } from './congestion.js';
import { newReno } from './congestion.js';
import { OutOfOrderQueue } from './reassembly.js';
import { RtoEstimator } from './rto.js';
import { SendBuffer } from './sendbuffer.js';
import { seqAdd, seqGeq, seqGt, seqLeq, seqLt, seqMax, seqSub } from './seq.js';
import type { TcpOptions, TcpSegment } from './segment.js';
import { ACK, FIN, PSH, RST, SYN, TCP_HEADER_LEN, optionsLength, writeTcp } from './segment.js';
import { TcpState, canReceiveData, isSynchronized } from './state.js';
import { IPV4_HEADER_LEN } from '../ip/ipv4.js';

export type TcpErrorCode = 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT';

export interface TcpConfig {
  /** Receive buffer: the most we advertise (bytes). */
  rcvBuf: number;
  /** Send buffer: `write()` reports backpressure beyond this many unacknowledged bytes. */
  sndBuf: number;
  /** Maximum segment lifetime, ms. TIME-WAIT lasts 2*MSL (RFC 9293 §3.4.2). */
  msl: number;
  /** Data retransmissions before giving up with ETIMEDOUT (Linux tcp_retries2 = 15). */
  maxRetries: number;
  /** SYN / SYN-ACK retransmissions before giving up (Linux tcp_syn_retries = 6). */
  synRetries: number;
  minRto: number;
  maxRto: number;
  initialRto: number;
  /** Delayed-ACK timer, ms (RFC 9293 §3.8.6.3: at most 500; Linux uses 40). Capped at 200 (MAX_DELAYED_ACK_MS). */
  delayedAckMs: number;
  /** Our receive window scale shift (RFC 7323 §2.2), offered when the peer offers one too. */
  wscale: number;
  /** Bytes of out-of-order data kept per connection. */
  oooMaxBytes: number;
  /** FIN-WAIT-2 timeout for connections the user has let go of (Linux tcp_fin_timeout). */
  finWait2Timeout: number;
  /** Keepalive (RFC 1122 §4.2.3.6): idle time before the first probe, interval, probes before giving up. */
  keepaliveIdle: number;
  keepaliveInterval: number;
  keepaliveCount: number;
  /** Makes each connection's congestion controller (default NewReno, src/tcp/congestion.ts). */
  congestionControl?: CongestionFactory;
}

/** Longest ACK delay we allow whatever the configuration: Linux's TCP_DELACK_MAX, well under the
 *  500 ms of RFC 1122 §4.2.3.2, because the peer's RTO may be as short as 200 ms. */
export const MAX_DELAYED_ACK_MS = 200;

/** Unread in-order data arriving in pieces smaller than this is joined into one buffer (see deliver). */
export const RCV_COALESCE_BYTES = 2048;

export const DEFAULT_TCP_CONFIG: TcpConfig = {
  rcvBuf: 1 << 20,
  sndBuf: 1 << 20,
  msl: 30_000, // TIME-WAIT = 60 s, like Linux
  maxRetries: 15,
  synRetries: 6,
  minRto: 200, // Linux's TCP_RTO_MIN; RFC 6298 §2.4 says 1 s "SHOULD" — 200 ms is what Linux peers expect
  maxRto: 120_000,
  initialRto: 1000, // RFC 6298 §2.1
  delayedAckMs: 40,
  wscale: 7,
  oooMaxBytes: 1 << 20,
  finWait2Timeout: 60_000,
  keepaliveIdle: 7_200_000,
  keepaliveInterval: 75_000,
  keepaliveCount: 9,
};

/** What a connection needs from its surroundings (the TcpLayer). */
export interface ConnectionHost {
  /** Transmit a finished TCP segment; `packet` has IPv4 header room at offset 0. */
  output(conn: Connection, packet: Uint8Array, now: number): void;
  onTransition(conn: Connection, from: TcpState, to: TcpState, cause: string): void;
  /** The connection's earliest deadline may have moved earlier. */
  reschedule(conn: Connection): void;
  /** The connection has output pending for the next flush. */
  markDirty(conn: Connection): void;
  /** The connection reached CLOSED: drop it from every table. */
  release(conn: Connection): void;
  /** A synchronizing connection from a listener completed its handshake. */
  established(conn: Connection): void;
  /** RFC 5961 §7: a global rate limit on challenge ACKs. */
  allowChallengeAck(now: number): boolean;
  count(name: string, n?: number): void;
}

/** Callbacks to the owner of the connection (a TcpSocket). All optional. */
export interface ConnectionUser {
  /** New in-order data (or the peer's FIN) can be taken with `read()`. */
  onReadable?(): void;
  /** Send-buffer space was freed. */
  onWritable?(): void;
  /** The handshake completed (active open). */
  onConnect?(): void;
  onError?(code: TcpErrorCode, message: string): void;
  /** Both directions are finished (TIME-WAIT or CLOSED reached) or the connection was aborted. */
  onClose?(): void;
}

export interface ConnectionInfo {
  local: string;
  remote: string;
  state: TcpState;
  sndUna: number;
  sndNxt: number;
  rcvNxt: number;
  sndWnd: number;
  rcvWnd: number;
  srtt: number;
  rto: number;
  retransmits: number;
  cwnd: number;
  ssthresh: number;
}

export class Connection {
  state: TcpState = TcpState.CLOSED;
  user: ConnectionUser = {};
  /** The listener that created us (passive open), if any. */
  listener: { port: number } | undefined;
  /** Counted in its listener's SYN queue (SYN-RECEIVED, not yet established). */
  inSynQueue = false;
  /** Set by the layer: position in its timer heap. */
  heapAt = Infinity;
  /** Set by the layer: whether this connection is queued for flush. */
  dirty = false;

  // --- Send sequence variables (RFC 9293 §3.3.1) ---
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  /** Highest sequence number sent so far (sndNxt goes back to sndUna after an RTO). */
  sndMax = 0;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  /** Largest window the peer ever offered (RFC 5961 §5.2's MAX.SND.WND; SWS avoidance). */
  maxSndWnd = 0;
  sndWscale = 0;
  /** Both SYNs carried the window-scale option. */
  private wscaleOk = false;
  /** Effective send MSS: min(peer's MSS option, ours). */
  sndMss = 536; // RFC 9293 §3.7.1: default when the peer sends no MSS option

  // --- Receive sequence variables ---
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window we last advertised (RCV.NXT + RCV.WND at that time). */
  rcvAdv = 0;
  rcvWscale = 0;
  /** Our MSS (from the MTU), announced in our SYN. */
  readonly rcvMss: number;

  // --- Buffers ---
  readonly sendBuffer = new SendBuffer();
  private rcvQueue: Uint8Array[] = [];
  private rcvQueueHead = 0;
  /** Bytes received in order and not yet read by the user. */
  rcvBuffered = 0;
  private ooo: OutOfOrderQueue | undefined;
  /** Sequence number of the peer's FIN when it arrived out of order. */
  private peerFinSeq: number | undefined;

  // --- Close bookkeeping ---
  /** The user closed the sending direction: FIN goes after the buffered data. */
  finQueued = false;
  finSent = false;
  finAcked = false;
  /** The peer's FIN has been received in order. */
  finReceived = false;
  /** The user let go of the connection (it finishes closing on its own; incoming data gets RST). */
  orphaned = false;
  private doneNotified = false;
  private activeOpen = false;

  // --- Timers (absolute ms; Infinity = off) ---
  retransmitAt = Infinity;
  persistAt = Infinity;
  delayedAckAt = Infinity;
  keepaliveAt = Infinity;
  finWait2At = Infinity;
  timeWaitUntil = Infinity;

  // --- Reliability state ---
  readonly rto: RtoEstimator;
  cc: CongestionControl;
  retries = 0;
  retransmits = 0;
  private dupAcks = 0;
  private rttTiming = false;
  private rttSeq = 0;
  private rttStart = 0;
  private persistBackoff = 0;
  /** The persist timer expired while sender SWS avoidance held back a small segment with nothing in
   *  flight: send what the window allows (RFC 1122 §4.2.3.4's "override timeout"). */
  private swsOverride = false;
  /** End of the last zero-window probe byte, which the peer may acknowledge beyond SND.MAX. */
  private probeEnd: number | undefined;
  private keepaliveProbes = 0;
  keepaliveEnabled = false;
  keepaliveIdle: number;
  /** RFC 896 Nagle, Minshall's variant: hold a small segment while an earlier small one is unacknowledged. */
  nagle = true;
  private lastSmallEnd = 0;
  private hasSmallOutstanding = false;

  // --- ACK bookkeeping ---
  private ackNow = false;
  private unackedBytes = 0;
  lastReceived = 0;

  bytesReceived = 0;
  bytesSent = 0;

  constructor(
    readonly host: ConnectionHost,
    readonly config: TcpConfig,
    readonly localAddr: number,
    readonly localPort: number,
    readonly remoteAddr: number,
    readonly remotePort: number,
    mtu: number,
    readonly key: string,
  ) {
    this.rcvMss = mtu - IPV4_HEADER_LEN - TCP_HEADER_LEN;
    this.rto = new RtoEstimator({ minRto: config.minRto, maxRto: config.maxRto, initialRto: config.initialRto });
    this.cc = (config.congestionControl ?? newReno)(this.sndMss);
    this.keepaliveIdle = config.keepaliveIdle;
  }

  // ===================================================================================
  // State changes
  // ===================================================================================

  /** The one place the state changes. The host turns it into a `transition` event and a debug line. */
  transition(to: TcpState, cause: string): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.host.onTransition(this, from, to, cause);
  }

  // ===================================================================================
  // User calls (RFC 9293 §3.10.1 - §3.10.6)
  // ===================================================================================

  /** Active OPEN: send a SYN. */
  openActive(iss: number, now: number): void {
    this.activeOpen = true;
    this.initSend(iss);
    this.transition(TcpState.SYN_SENT, 'active open');
    this.sendSyn(now);
  }

  /** Passive open: a listener received `syn`. We answer with SYN-ACK in SYN-RECEIVED (§3.10.7.2). */
  openPassive(syn: TcpSegment, iss: number, now: number): void {
    this.initSend(iss);
    this.irs = syn.seq;
    this.rcvNxt = seqAdd(syn.seq, 1);
    this.applySynOptions(syn.options);
    // RFC 7323 §2.2: the window field of a SYN is never scaled.
    this.sndWnd = syn.window;
    this.maxSndWnd = syn.window;
    this.sndWl1 = syn.seq;
    this.sndWl2 = iss;
    this.rcvAdv = this.rcvNxt;
    this.lastReceived = now;
    this.transition(TcpState.LISTEN, 'listener');
    this.transition(TcpState.SYN_RECEIVED, 'SYN received');
    this.sendSyn(now);
  }

  private initSend(iss: number): void {
    this.iss = iss;
    this.sndUna = iss;
    this.sndNxt = seqAdd(iss, 1);
    this.sndMax = this.sndNxt;
  }

  /** Queue user data. Returns true while the send buffer is below its limit. */
  send(data: Uint8Array): boolean {
    if (this.finQueued) return false;
    this.sendBuffer.push(data);
    this.markDirty();
    return this.sendBuffer.length < this.config.sndBuf;
  }

  get writable(): boolean {
    return this.sendBuffer.length < this.config.sndBuf;
  }

  /** CLOSE (§3.10.4): no more data from us; FIN follows the buffered data. */
  close(): void {
    switch (this.state) {
      case TcpState.SYN_SENT:
        this.toClosed('close in SYN-SENT');
        return;
      case TcpState.SYN_RECEIVED:
        // §3.10.4: queued until ESTABLISHED; the FIN follows once our SYN is acknowledged.
        this.finQueued = true;
        return;
      case TcpState.ESTABLISHED:
        this.finQueued = true;
        this.transition(TcpState.FIN_WAIT_1, 'close');
        this.markDirty();
        return;
      case TcpState.CLOSE_WAIT:
        this.finQueued = true;
        this.transition(TcpState.LAST_ACK, 'close');
        this.markDirty();
        return;
      default:
        return; // already closing: "error: connection closing" — nothing to do
    }
  }

  /** ABORT (§3.10.5): RST to the peer when synchronized, then CLOSED. */
  abort(now: number, cause = 'abort'): void {
    if (this.state === TcpState.CLOSED) return;
    if (
      this.state === TcpState.SYN_RECEIVED ||
      this.state === TcpState.ESTABLISHED ||
      this.state === TcpState.FIN_WAIT_1 ||
      this.state === TcpState.FIN_WAIT_2 ||
      this.state === TcpState.CLOSE_WAIT
    ) {
      this.emitSegment(this.sndMax, 0, RST | ACK, now); // <SEQ=SND.NXT><CTL=RST> (sndMax: see sendAck)
      this.host.count('tcp.rst.out');
    }
    this.toClosed(cause);
  }

  /** The user has let go: finish the close on our own (Linux "orphan"). */
  orphan(now: number): void {
    this.orphaned = true;
    this.user = {};
    if (this.state === TcpState.FIN_WAIT_2) this.finWait2At = now + this.config.finWait2Timeout;
    this.host.reschedule(this);
  }

  /** Take the next chunk of in-order received data, or undefined. */
  read(): Uint8Array | undefined {
    if (this.rcvQueueHead >= this.rcvQueue.length) return undefined;
    const chunk = this.rcvQueue[this.rcvQueueHead]!;
    this.rcvQueue[this.rcvQueueHead++] = EMPTY;
    if (this.rcvQueueHead > 64 && this.rcvQueueHead * 2 > this.rcvQueue.length) {
      this.rcvQueue = this.rcvQueue.slice(this.rcvQueueHead);
      this.rcvQueueHead = 0;
    }
    const before = this.windowToAdvertise();
    this.rcvBuffered -= chunk.length;
    this.maybeWindowUpdate(before);
    return chunk;
  }

  /** The peer's FIN was received and every byte before it has been read. */
  get readEnded(): boolean {
    return this.finReceived && this.rcvBuffered === 0;
  }

  setKeepAlive(enable: boolean, idleMs: number | undefined, now: number): void {
    this.keepaliveEnabled = enable;
    if (idleMs !== undefined && idleMs > 0) this.keepaliveIdle = idleMs;
    this.keepaliveProbes = 0;
    this.keepaliveAt = enable && isSynchronized(this.state) ? now + this.keepaliveIdle : Infinity;
    this.host.reschedule(this);
  }

  // ===================================================================================
  // SEGMENT ARRIVES (RFC 9293 §3.10.7.3 SYN-SENT, §3.10.7.4 other states)
  // ===================================================================================

  onSegment(seg: TcpSegment, now: number): void {
    this.lastReceived = now;
    if (this.state === TcpState.SYN_SENT) {
      this.onSegmentSynSent(seg, now);
      return;
    }
    if (this.state === TcpState.CLOSED || this.state === TcpState.LISTEN) return;

    const flags = seg.flags;
    let seq = seg.seq;
    let payload = seg.payload;
    let fin = (flags & FIN) !== 0;
    let syn = (flags & SYN) !== 0;
    const segLen = payload.length + (syn ? 1 : 0) + (fin ? 1 : 0);

    // Simultaneous open (§3.5 figure 8, line 6): the peer's SYN-ACK repeats the SYN we already
    // acknowledged, so it lies just before RCV.NXT; its ACK of our SYN still completes the
    // handshake (Linux lets it pass the sequence check the same way). The old SYN is trimmed below.
    const crossedSynAck =
      this.state === TcpState.SYN_RECEIVED && this.activeOpen && syn && (flags & ACK) !== 0 && seqAdd(seq, 1) === this.rcvNxt;
    if (this.state === TcpState.SYN_RECEIVED && syn && !(flags & (ACK | RST)) && seq === this.irs) {
      // The peer retransmitted its SYN: our SYN-ACK was probably lost. Answer with the SYN-ACK
      // again at once (as Linux does) rather than the bare ACK of the sequence check, which a
      // peer in SYN-SENT can only drop.
      this.host.count('tcp.syn.retransmitted-in');
      this.retransmits++;
      this.sendSyn(now);
      this.rttTiming = false; // Karn: the answer may be to either SYN-ACK
      return;
    }
    // first: check sequence number (§3.10.7.4 table of four cases).
    if (!crossedSynAck && !this.acceptable(seq, segLen)) {
      if (!(flags & RST)) {
        // "send an acknowledgment ... <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>" (also answers zero-window probes)
        this.ackNow = true;
        this.markDirty();
      }
      this.host.count('tcp.drop.out-of-window');
      // A retransmitted FIN in TIME-WAIT is acceptable only at RCV.NXT-1: ack it and restart 2MSL.
      if (this.state === TcpState.TIME_WAIT && fin && !(flags & RST)) this.restartTimeWait(now);
      return;
    }
    // Trim what lies before RCV.NXT (already received) and beyond the window.
    if (seqLt(seq, this.rcvNxt)) {
      let skip = seqSub(this.rcvNxt, seq);
      if (syn) {
        syn = false; // the SYN occupies the first sequence number: it is old
        skip--;
      }
      if (skip > payload.length) fin = false; // the FIN is old too
      payload = payload.subarray(Math.min(skip, payload.length));
      seq = this.rcvNxt;
    }
    const wnd = this.rcvWindow();
    if (payload.length > wnd && !(flags & RST)) {
      payload = payload.subarray(0, Math.max(0, wnd));
      fin = false; // the FIN lies beyond the window: it will come again
    }
    // The peer's FIN, held out of order, ends its sequence space: nothing lies beyond it
    // (RFC 9293 §3.10.7.4 eighth: the FIN is the last octet the peer sends).
    if (this.peerFinSeq !== undefined && seqGt(seqAdd(seq, payload.length), this.peerFinSeq)) {
      this.host.count('tcp.drop.beyond-fin');
      payload = payload.subarray(0, Math.max(0, seqSub(this.peerFinSeq, seq)));
    }

    // second: check the RST bit (RFC 5961 §3.2: reset only on an exact match, else challenge ACK).
    if (flags & RST) {
      if (seg.seq !== this.rcvNxt) {
        this.challengeAck(now, 'tcp.rst.challenged');
        return;
      }
      this.host.count('tcp.rst.in');
      this.onReset();
      return;
    }

    // fourth: check the SYN bit (RFC 5961 §4.2: challenge ACK in any synchronized state).
    if (syn) {
      if (this.state === TcpState.SYN_RECEIVED && !this.activeOpen) {
        // §3.10.7.4 fourth, SYN-RECEIVED from a passive OPEN: return to LISTEN (forget this attempt).
        this.toClosed('SYN in SYN-RECEIVED');
        return;
      }
      this.challengeAck(now, 'tcp.syn.challenged');
      return;
    }

    // fifth: check the ACK field.
    if (!(flags & ACK)) {
      this.host.count('tcp.drop.no-ack');
      return;
    }
    if (this.state === TcpState.SYN_RECEIVED) {
      if (!(seqLt(this.sndUna, seg.ack) && seqLeq(seg.ack, this.sndMax))) {
        // <SEQ=SEG.ACK><CTL=RST>
        this.host.count('tcp.drop.bad-ack');
        this.emitRst(seg.ack, now);
        return;
      }
      this.sndWnd = seg.window << this.sndWscale;
      this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
      this.sndWl1 = seg.seq;
      this.sndWl2 = seg.ack;
      this.synAcked(seg.ack, now);
      this.transition(TcpState.ESTABLISHED, 'ACK of our SYN');
      this.onEstablished(now);
      // A CLOSE issued in SYN-RECEIVED was queued until now (§3.10.4).
      if (this.finQueued) this.transition(TcpState.FIN_WAIT_1, 'close (queued in SYN-RECEIVED)');
    }
    if (!this.processAck(seg, now)) return;
    const state = this.state as TcpState; // processAck may have changed it
    if (state === TcpState.CLOSED) return;
    if (state === TcpState.TIME_WAIT) {
      // The only thing that can arrive in TIME-WAIT is a retransmission of the remote FIN.
      if (fin) {
        this.ackNow = true;
        this.markDirty();
        this.restartTimeWait(now);
      }
      return;
    }

    // sixth: the URG bit — urgent data is delivered in line (RFC 6093); nothing to do.

    // seventh: process the segment text.
    if (payload.length > 0) {
      if (!canReceiveData(this.state)) {
        this.host.count('tcp.drop.data-after-fin');
      } else if (this.orphaned) {
        // Nobody will ever read this: tell the peer (RFC 1122 §4.2.2.13, as Linux does).
        this.host.count('tcp.rst.data-on-closed');
        this.abort(now, 'data after close');
        return;
      } else {
        this.receiveText(seq, payload, fin, now);
      }
    }

    // eighth: check the FIN bit (only once every byte before it has arrived).
    if (fin && seqAdd(seq, payload.length) === this.rcvNxt && !this.finReceived) {
      this.receiveFin(now, 'FIN received');
    } else if (fin && !this.finReceived && seqGt(seqAdd(seq, payload.length), this.rcvNxt)) {
      // Out of order: remember where the stream ends, and send a duplicate ACK at once as for
      // any out-of-order segment (RFC 5681 §4.2).
      this.peerFinSeq = seqAdd(seq, payload.length);
      if (payload.length === 0) this.sendAck(now);
    }
  }

  /** §3.10.7.3: SEGMENT ARRIVES in SYN-SENT. */
  private onSegmentSynSent(seg: TcpSegment, now: number): void {
    const flags = seg.flags;
    let ackOk = false;
    // first: check the ACK bit
    if (flags & ACK) {
      if (seqLeq(seg.ack, this.iss) || seqGt(seg.ack, this.sndMax)) {
        if (!(flags & RST)) this.emitRst(seg.ack, now);
        this.host.count('tcp.drop.bad-ack');
        return;
      }
      ackOk = true;
    }
    // second: check the RST bit
    if (flags & RST) {
      if (ackOk) {
        this.host.count('tcp.rst.in');
        this.fail('ECONNREFUSED', 'connection refused', 'RST in SYN-SENT');
      }
      return;
    }
    // fourth: check the SYN bit
    if (!(flags & SYN)) return;
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    // The peer may send as much as our SYN's (unscaled) window allowed.
    this.rcvAdv = seqAdd(this.rcvNxt, Math.min(this.config.rcvBuf, 65535));
    this.applySynOptions(seg.options);
    this.sndWnd = seg.window; // never scaled in a SYN (RFC 7323 §2.2)
    this.maxSndWnd = seg.window;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    if (ackOk) {
      this.synAcked(seg.ack, now);
      this.transition(TcpState.ESTABLISHED, 'SYN-ACK received');
      this.ackNow = true;
      this.markDirty();
      this.onEstablished(now);
      // Data or FIN on the SYN-ACK: continue at the sixth step.
      if (seg.payload.length > 0 && this.state === TcpState.ESTABLISHED) this.receiveText(this.rcvNxt, seg.payload, false, now);
      if (flags & FIN && this.state === TcpState.ESTABLISHED) this.receiveFin(now, 'FIN on SYN-ACK');
    } else {
      // Simultaneous open (§3.5, figure 8): answer with SYN-ACK from SYN-RECEIVED.
      this.transition(TcpState.SYN_RECEIVED, 'SYN received (simultaneous open)');
      this.retries = 0;
      this.sendSyn(now);
    }
  }

  /** Our SYN is acknowledged up to `ack`. */
  private synAcked(ack: number, now: number): void {
    if (this.rttTiming && this.retries === 0) this.rto.sample(now - this.rttStart);
    this.rttTiming = false;
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.retransmitAt = Infinity;
    this.rto.resetBackoff();
    if (this.retries > 0) {
      // RFC 5681 §3.1: a lost SYN means the initial window is one segment; RFC 6298 §5.7:
      // with no RTT sample (Karn), data transmission starts with an RTO of 3 s.
      this.cc.onSynLoss();
      this.rto.afterSynLoss();
    }
    this.retries = 0;
  }

  private onEstablished(now: number): void {
    if (this.keepaliveEnabled) this.keepaliveAt = now + this.keepaliveIdle;
    if (this.listener) this.host.established(this);
    else this.user.onConnect?.();
    this.markDirty();
    this.host.reschedule(this);
  }

  /**
   * The window scale we offer: the configured shift, but never so large that one unit of window
   * (2^shift bytes) exceeds the step by which receiver SWS avoidance opens it, min(rcvBuf/2, MSS)
   * (RFC 1122 §4.2.3.3). With a coarser unit an opening could round down to nothing, and with a
   * receive buffer smaller than one unit a closed window could never open again.
   */
  private offeredWscale(): number {
    const step = Math.min(this.config.rcvBuf / 2, this.rcvMss);
    let shift = this.config.wscale;
    while (shift > 0 && 2 ** shift > step) shift--;
    return shift;
  }

  private applySynOptions(o: TcpOptions): void {
    // RFC 9293 §3.7.1: the peer's MSS bounds our segments; without the option, 536.
    const peerMss = o.mss !== undefined && o.mss > 0 ? o.mss : 536;
    // A floor of 64 keeps a hostile peer from asking for 1-byte segments, but our own link's
    // limit (rcvMss = MTU - 40) comes last: on a link under 104 bytes a 64-byte segment would
    // not fit, and every data segment would be dropped before it left.
    this.sndMss = Math.min(Math.max(64, peerMss), this.rcvMss);
    // RFC 7323 §2.2: scaling is on only when both SYNs carry the option (we always offer it).
    this.wscaleOk = o.wscale !== undefined;
    this.sndWscale = this.wscaleOk ? Math.min(o.wscale!, 14) : 0;
    this.rcvWscale = this.wscaleOk ? this.offeredWscale() : 0;
    this.cc.setMss(this.sndMss);
  }

  /** The receive window we consider ourselves bound to: what we last advertised. */
  private rcvWindow(): number {
    return Math.max(0, seqSub(this.rcvAdv, this.rcvNxt));
  }

  /** §3.10.7.4 "first": the four cases of segment acceptability. */
  private acceptable(seq: number, segLen: number): boolean {
    const wnd = this.rcvWindow();
    if (segLen === 0) {
      if (wnd === 0) return seq === this.rcvNxt;
      return seqLeq(this.rcvNxt, seq) && seqLt(seq, seqAdd(this.rcvNxt, wnd));
    }
    if (wnd === 0) return false;
    const end = seqAdd(seq, segLen - 1);
    const hi = seqAdd(this.rcvNxt, wnd);
    return (seqLeq(this.rcvNxt, seq) && seqLt(seq, hi)) || (seqLeq(this.rcvNxt, end) && seqLt(end, hi));
  }

  /** §3.10.7.4 "second": an acceptable RST. */
  private onReset(): void {
    switch (this.state) {
      case TcpState.SYN_RECEIVED:
        if (this.activeOpen) this.fail('ECONNREFUSED', 'connection refused', 'RST in SYN-RECEIVED');
        else this.toClosed('RST in SYN-RECEIVED'); // back to LISTEN: the listener never saw it
        return;
      case TcpState.ESTABLISHED:
      case TcpState.FIN_WAIT_1:
      case TcpState.FIN_WAIT_2:
      case TcpState.CLOSE_WAIT:
        this.fail('ECONNRESET', 'connection reset by peer', 'RST received');
        return;
      default:
        // CLOSING, LAST-ACK, TIME-WAIT: "enter the CLOSED state, delete the TCB, and return".
        this.toClosed('RST received');
    }
  }

  /** RFC 5961 §3.2 / §4.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, rate-limited (§7). */
  private challengeAck(now: number, counter: string): void {
    this.host.count(counter);
    if (!this.host.allowChallengeAck(now)) {
      this.host.count('tcp.challenge-ack.limited');
      return;
    }
    this.host.count('tcp.challenge-ack.out');
    this.ackNow = true;
    this.markDirty();
  }

  /**
   * §3.10.7.4 "fifth", for the synchronized states: new data acknowledged, duplicate ACKs,
   * the send window update, and the FIN-acked transitions. Returns false to drop the segment.
   */
  private processAck(seg: TcpSegment, now: number): boolean {
    const ack = seg.ack;
    if (this.probeEnd !== undefined && seqGt(ack, this.sndMax) && seqLeq(ack, this.probeEnd)) this.sndMax = ack;
    this.probeEnd = undefined;
    // RFC 5961 §5.2: acceptable if SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT (we use SND.MAX, the
    // highest sequence sent, since SND.NXT rewinds after a retransmission timeout).
    if (seqGt(ack, this.sndMax)) {
      this.host.count('tcp.drop.ack-unsent');
      this.ackNow = true;
      this.markDirty();
      return false;
    }
    if (seqLt(ack, seqAdd(this.sndUna, -Math.max(this.maxSndWnd, 1)))) {
      this.host.count('tcp.drop.ack-too-old');
      this.ackNow = true;
      this.markDirty();
      return false;
    }
    const window = seg.window << this.sndWscale;
    const flight = seqSub(this.sndMax, this.sndUna);

    if (seqGt(ack, this.sndUna)) {
      const acked = seqSub(ack, this.sndUna);
      const dataAcked = Math.min(acked, this.sendBuffer.length);
      if (this.finSent && acked > this.sendBuffer.length) this.finAcked = true;
      this.sendBuffer.drop(dataAcked);
      this.sndUna = ack;
      if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
      if (this.hasSmallOutstanding && seqGeq(ack, this.lastSmallEnd)) this.hasSmallOutstanding = false;
      // Karn's algorithm: rttTiming is cleared whenever the timed segment is retransmitted.
      if (this.rttTiming && seqGeq(ack, this.rttSeq)) {
        this.rto.sample(now - this.rttStart);
        this.rttTiming = false;
      }
      this.retries = 0;
      this.dupAcks = 0;
      const verdict = this.cc.onAck(acked, ack, flight, now);
      // RFC 6298 §5.2/5.3: stop the timer when everything is acknowledged, else restart it.
      this.retransmitAt = this.sndUna === this.sndMax ? Infinity : now + this.rto.rto;
      if (verdict === 'partial') this.retransmitFirst(now);
      this.bytesSent += dataAcked;
      if (dataAcked > 0) this.user.onWritable?.();
      this.markDirty();
    } else if (
      ack === this.sndUna &&
      seg.payload.length === 0 &&
      !(seg.flags & (SYN | FIN)) &&
      window === this.sndWnd &&
      flight > 0
    ) {
      // RFC 5681 §2: a duplicate ACK.
      this.dupAcks++;
      this.host.count('tcp.dupack.in');
      if (this.cc.onDupAck(this.dupAcks, ack, flight, this.sndMax) === 'retransmit') {
        this.host.count('tcp.fast-retransmit');
        this.rttTiming = false;
        this.retransmitFirst(now);
      }
      this.markDirty(); // in recovery, an inflated cwnd may allow new data
    }

    // Window update (§3.10.7.4 fifth): only from a segment newer than the last one that updated it.
    if (seqLeq(this.sndUna, ack) && (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLeq(this.sndWl2, ack)))) {
      const opened = window > this.sndWnd;
      this.sndWnd = window;
      this.sndWl1 = seg.seq;
      this.sndWl2 = ack;
      if (window > this.maxSndWnd) this.maxSndWnd = window;
      // A window that grew ends zero-window probing or SWS avoidance's wait: sendData decides
      // again, and re-arms the persist timer if it still cannot send. The same window repeated
      // must not cancel that timer: with nothing in flight, it is all that will move us on.
      if (opened) {
        this.persistAt = Infinity;
        this.persistBackoff = 0;
        this.markDirty();
      }
    }
    // Any ACK shows the peer is alive: zero-window probes and keepalives are answered.
    this.keepaliveProbes = 0;
    if (this.keepaliveEnabled) this.keepaliveAt = now + this.keepaliveIdle;

    if (this.finAcked) {
      switch (this.state) {
        case TcpState.FIN_WAIT_1:
          this.transition(TcpState.FIN_WAIT_2, 'ACK of our FIN');
          if (this.orphaned) this.finWait2At = now + this.config.finWait2Timeout;
          this.host.reschedule(this);
          break;
        case TcpState.CLOSING:
          this.enterTimeWait(now, 'ACK of our FIN');
          return false;
        case TcpState.LAST_ACK:
          this.toClosed('ACK of our FIN');
          return false;
        default:
          break;
      }
    }
    return true;
  }

  /** §3.10.7.4 "seventh": in-order text goes to the user, out-of-order text to the reassembly queue. */
  private receiveText(seq: number, payload: Uint8Array, fin: boolean, now: number): void {
    if (seq === this.rcvNxt) {
      this.deliver(payload);
      this.rcvNxt = seqAdd(this.rcvNxt, payload.length);
      // RFC 5681 §4.2: a segment that fills all *or part* of a gap is ACKed at once, so the
      // sender in recovery learns quickly; any in-order segment while data waits beyond it does.
      let filledHole = this.ooo !== undefined && this.ooo.count > 0;
      if (this.ooo && this.ooo.count > 0) {
        for (const chunk of this.ooo.take(this.rcvNxt)) {
          this.deliver(chunk);
          this.rcvNxt = seqAdd(this.rcvNxt, chunk.length);
        }
        if (this.ooo.count === 0) this.ooo = undefined;
      }
      this.unackedBytes += payload.length;
      // RFC 5681 §4.2: ACK at once when a segment fills a hole; RFC 1122 §4.2.3.2: ACK at least
      // every second full-sized segment; otherwise within the delayed-ACK time. "Full-sized" is the
      // peer's segment size, min(its MSS option, ours) = sndMss, which may be smaller than our MSS.
      if (filledHole || this.unackedBytes >= 2 * this.sndMss || fin) {
        this.ackNow = true;
      } else if (this.delayedAckAt === Infinity) {
        this.delayedAckAt = now + Math.min(this.config.delayedAckMs, MAX_DELAYED_ACK_MS);
        this.host.reschedule(this);
      }
      this.markDirty();
      if (this.peerFinSeq !== undefined && this.peerFinSeq === this.rcvNxt && !fin) {
        this.peerFinSeq = undefined;
        this.receiveFin(now, 'FIN received (after reassembly)');
      }
      this.user.onReadable?.();
    } else {
      // Out of order: keep it (bounded) and send a duplicate ACK at once (RFC 5681 §4.2).
      this.ooo ??= new OutOfOrderQueue(this.config.oooMaxBytes);
      const stored = this.ooo.insert(seq, payload, this.rcvNxt, this.rcvWindow());
      this.host.count(stored > 0 ? 'tcp.ooo.queued' : 'tcp.ooo.dropped');
      if (fin) this.peerFinSeq = seqAdd(seq, payload.length);
      // One duplicate ACK per out-of-order segment, sent now rather than coalesced into the
      // batch's single ACK: the sender counts them (three trigger fast retransmit, RFC 5681 §3.2),
      // and a data segment carrying the same ACK does not count as a duplicate (RFC 5681 §2).
      this.sendAck(now);
    }
  }

  private deliver(data: Uint8Array): void {
    // The packet buffer belongs to the link: keep a copy of just these bytes. A small segment is
    // appended to the last unread chunk while the two fit in RCV_COALESCE_BYTES (one copy of at most
    // that much), so two neighbouring chunks always hold more than that together: a peer sending
    // 1-byte segments to a reader that has stopped reading cannot make us keep one buffer object
    // (about a hundred bytes of memory) per byte it sent. (Linux charges each buffer's real size,
    // truesize, against the receive buffer and collapses queues of small ones for the same reason.)
    const queue = this.rcvQueue;
    const last = queue.length > this.rcvQueueHead ? queue[queue.length - 1]! : undefined;
    if (last !== undefined && last.length + data.length <= RCV_COALESCE_BYTES) {
      const joined = Buffer.allocUnsafe(last.length + data.length);
      joined.set(last);
      joined.set(data, last.length);
      queue[queue.length - 1] = joined;
    } else {
      const copy = Buffer.allocUnsafe(data.length);
      copy.set(data);
      queue.push(copy);
    }
    this.rcvBuffered += data.length;
    this.bytesReceived += data.length;
  }

  /** §3.10.7.4 "eighth": the peer's FIN, in order. */
  private receiveFin(now: number, cause: string): void {
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.finReceived = true;
    this.ackNow = true;
    this.markDirty();
    switch (this.state) {
      case TcpState.SYN_RECEIVED:
      case TcpState.ESTABLISHED:
        this.transition(TcpState.CLOSE_WAIT, cause);
        break;
      case TcpState.FIN_WAIT_1:
        if (this.finAcked) this.enterTimeWait(now, cause);
        else this.transition(TcpState.CLOSING, cause + ' (simultaneous close)');
        break;
      case TcpState.FIN_WAIT_2:
        this.enterTimeWait(now, cause);
        break;
      case TcpState.TIME_WAIT:
        this.restartTimeWait(now);
        break;
      default:
        break;
    }
    this.user.onReadable?.();
  }

  private enterTimeWait(now: number, cause: string): void {
    this.transition(TcpState.TIME_WAIT, cause);
    this.retransmitAt = Infinity;
    this.persistAt = Infinity;
    this.keepaliveAt = Infinity;
    this.finWait2At = Infinity;
    this.sendBuffer.clear();
    this.ooo = undefined;
    this.restartTimeWait(now);
    this.notifyDone();
  }

  private restartTimeWait(now: number): void {
    this.timeWaitUntil = now + 2 * this.config.msl;
    this.host.reschedule(this);
  }

  // ===================================================================================
  // Output
  // ===================================================================================

  markDirty(): void {
    if (!this.dirty) this.host.markDirty(this);
  }

  /** Send what the windows allow, then a bare ACK if one is owed and nothing carried it. */
  flush(now: number): void {
    this.dirty = false;
    if (this.state === TcpState.CLOSED) return;
    let sent = false;
    switch (this.state) {
      case TcpState.ESTABLISHED:
      case TcpState.CLOSE_WAIT:
      case TcpState.FIN_WAIT_1:
      case TcpState.CLOSING:
      case TcpState.LAST_ACK:
        sent = this.sendData(now);
        break;
      default:
        break;
    }
    if (this.ackNow && !sent) this.sendAck(now);
  }

  /** Data (and the FIN) as the send window, cwnd, Nagle and SWS avoidance allow (RFC 9293 §3.8.6.2.1, RFC 1122 §4.2.3.4). */
  private sendData(now: number): boolean {
    let sent = false;
    const mss = this.sndMss;
    for (let guard = 0; guard < 100_000; guard++) {
      const offset = seqSub(this.sndNxt, this.sndUna);
      const remaining = this.sendBuffer.length - offset;
      if (remaining < 0) break; // the FIN is already out
      const wnd = Math.min(this.sndWnd, this.cc.cwnd);
      const inFlight = offset;
      const usable = wnd - inFlight;
      let len = Math.min(remaining, mss, Math.max(usable, 0));
      const fin = this.finQueued && len === remaining;
      if (len === 0 && !(fin && remaining === 0)) {
        if (remaining > 0 && inFlight === 0 && this.retransmitAt === Infinity) this.armPersist(now);
        break;
      }
      const isRetransmission = seqLt(this.sndNxt, this.sndMax);
      // Nagle and SWS avoidance decide when NEW data may go; bytes already sent once (resent after
      // a timeout) were allowed then, and holding them back now could stall the connection for good.
      if (len > 0 && len < mss && !fin && !isRetransmission) {
        // Nagle (RFC 896, Minshall's variant): hold a small segment while a small one is unacknowledged.
        if (this.nagle && this.hasSmallOutstanding && inFlight > 0) break;
        // Sender SWS avoidance (RFC 1122 §4.2.3.4): a small segment cut short by the window goes out
        // only if it is at least half the largest window the peer has offered. With nothing in flight
        // no ACK will come to open the window further: the persist timer stands in for the RFC's
        // "override timeout", after which what fits is sent (onPersistTimeout sets swsOverride).
        if (len < remaining && len < this.maxSndWnd / 2 && !this.swsOverride) {
          if (inFlight === 0 && this.retransmitAt === Infinity) this.armPersist(now);
          break;
        }
      }
      const flags = ACK | (len === remaining && len > 0 ? PSH : 0) | (fin ? FIN : 0);
      this.emitSegment(this.sndNxt, len, flags, now);
      this.swsOverride = false;
      if (isRetransmission) {
        this.retransmits++;
        this.host.count('tcp.retransmit');
      } else if (!this.rttTiming && len > 0) {
        this.rttTiming = true;
        this.rttSeq = seqAdd(this.sndNxt, len);
        this.rttStart = now;
      }
      if (len > 0 && len < mss) {
        this.hasSmallOutstanding = true;
        this.lastSmallEnd = seqAdd(this.sndNxt, len);
      }
      this.sndNxt = seqAdd(this.sndNxt, len + (fin ? 1 : 0));
      if (fin) this.finSent = true;
      this.sndMax = seqMax(this.sndMax, this.sndNxt);
      if (this.retransmitAt === Infinity) {
        this.retransmitAt = now + this.rto.rto;
        this.host.reschedule(this);
      }
      this.persistAt = Infinity;
      sent = true;
      if (fin) break;
    }
    return sent;
  }

  /** Retransmit the first unacknowledged segment without moving SND.NXT (fast retransmit, partial ACK). */
  private retransmitFirst(now: number): void {
    const len = Math.min(this.sendBuffer.length, this.sndMss);
    const fin = this.finSent && len === this.sendBuffer.length;
    if (len === 0 && !fin) return;
    this.emitSegment(this.sndUna, len, ACK | (fin ? FIN : 0), now);
    this.retransmits++;
    this.host.count('tcp.retransmit');
    this.retransmitAt = now + this.rto.rto;
    this.host.reschedule(this);
  }

  /**
   * <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, where the RFC's SND.NXT is our sndMax: our sndNxt goes
   * back to SND.UNA after a retransmission timeout, and an ACK numbered from there would lie
   * below the RCV.NXT of a peer that already has the data, which drops it unread as an old
   * segment (RFC 9293 §3.10.7.4 "first") — and with it our acknowledgment of its data.
   */
  private sendAck(now: number): void {
    this.emitSegment(this.sndMax, 0, ACK, now);
  }

  private sendSyn(now: number): void {
    const flags = this.state === TcpState.SYN_RECEIVED ? SYN | ACK : SYN;
    const opts: TcpOptions = { mss: this.rcvMss };
    // RFC 7323 §2.2: offer scaling in a SYN; in a SYN-ACK only if the peer offered it.
    if (this.state === TcpState.SYN_SENT) opts.wscale = this.offeredWscale();
    else if (this.wscaleOk) opts.wscale = this.rcvWscale;
    if (this.retries === 0) {
      this.rttTiming = true;
      this.rttStart = now;
    }
    this.emitSegment(this.iss, 0, flags, now, opts);
    this.retransmitAt = now + this.rto.rto;
    this.host.reschedule(this);
  }

  /** The window we would advertise now, applying receiver SWS avoidance (RFC 1122 §4.2.3.3). */
  private windowToAdvertise(): number {
    const free = Math.max(0, this.config.rcvBuf - this.rcvBuffered - (this.ooo ? this.ooo.bytes : 0));
    const current = this.rcvWindow();
    // Move the right edge only by at least min(half the buffer, one MSS); never shrink it (§3.8.6.2.2).
    if (free - current >= Math.min(this.config.rcvBuf / 2, this.rcvMss)) return free;
    return current;
  }

  /** After the user read data: tell the peer if its view of our window was (almost) closed. */
  private maybeWindowUpdate(before: number): void {
    if (!isSynchronized(this.state) || this.finReceived) return;
    const after = this.windowToAdvertise();
    if (after > before && (before < this.rcvMss || after - before >= this.config.rcvBuf / 2)) {
      this.ackNow = true;
      this.markDirty();
    }
  }

  private emitRst(seq: number, now: number): void {
    this.host.count('tcp.rst.out');
    this.emitSegment(seq, 0, RST, now);
  }

  /** Build one segment (header, options, `len` bytes from the send buffer at `seq`) and hand it to the host. */
  private emitSegment(seq: number, len: number, flags: number, now: number, options?: TcpOptions): void {
    let window: number;
    const isSyn = (flags & SYN) !== 0;
    if (flags & RST && !(flags & ACK)) {
      window = 0;
    } else {
      const wnd = this.windowToAdvertise();
      // The window field of a SYN is never scaled (RFC 7323 §2.2); elsewhere it is shifted by ours.
      let field = isSyn ? wnd : wnd >>> this.rcvWscale;
      // The shift rounds down, which would pull the right edge back (by up to 2^shift - 1 bytes)
      // below what we already offered (RFC 7323 appendix F). Round up instead: the window never
      // shrinks (RFC 9293 §3.8.6.2.2), at the cost of accepting those few bytes more (as Linux does).
      // Only while the window already offered is backed by free buffer space, though: rounding up
      // an overcommitted window again and again would move the edge on by up to a unit per ACK, and
      // a peer sending small segments could fill our memory without bound.
      const offered = this.rcvWindow();
      const free = this.config.rcvBuf - this.rcvBuffered - this.oooBytes;
      if (!isSyn && field << this.rcvWscale < offered && offered <= free) field = Math.ceil(offered / (1 << this.rcvWscale));
      window = Math.min(field, 65535);
      const advertised = isSyn ? window : window << this.rcvWscale;
      const edge = seqAdd(this.rcvNxt, advertised);
      if (seqGt(edge, this.rcvAdv)) this.rcvAdv = edge;
    }
    const optLen = options ? optionsLength(options) : 0;
    const tcpOff = IPV4_HEADER_LEN;
    const packet = Buffer.allocUnsafe(tcpOff + TCP_HEADER_LEN + optLen + len);
    if (len > 0) this.sendBuffer.copyOut(seqSub(seq, this.sndUna), len, packet, tcpOff + TCP_HEADER_LEN + optLen);
    const ack = flags & ACK ? this.rcvNxt : 0;
    writeTcp(
      packet,
      tcpOff,
      { srcPort: this.localPort, dstPort: this.remotePort, seq, ack, flags, window, options },
      len,
      this.localAddr,
      this.remoteAddr,
    );
    if (flags & ACK) {
      this.ackNow = false;
      this.unackedBytes = 0;
      this.delayedAckAt = Infinity;
    }
    this.host.count('tcp.out');
    this.host.output(this, packet, now);
  }

  // ===================================================================================
  // Timers
  // ===================================================================================

  nextDeadline(): number {
    return Math.min(this.retransmitAt, this.persistAt, this.delayedAckAt, this.keepaliveAt, this.finWait2At, this.timeWaitUntil);
  }

  onTimer(now: number): void {
    if (now >= this.timeWaitUntil) {
      this.timeWaitUntil = Infinity;
      this.toClosed('2*MSL timeout');
      return;
    }
    if (now >= this.finWait2At) {
      this.finWait2At = Infinity;
      this.host.count('tcp.fin-wait-2.timeout');
      this.toClosed('FIN-WAIT-2 timeout');
      return;
    }
    if (now >= this.retransmitAt) {
      this.retransmitAt = Infinity;
      this.onRetransmitTimeout(now);
      if (this.state === TcpState.CLOSED) return;
    }
    if (now >= this.persistAt) {
      this.persistAt = Infinity;
      this.onPersistTimeout(now);
      if (this.state === TcpState.CLOSED) return;
    }
    if (now >= this.delayedAckAt) {
      this.delayedAckAt = Infinity;
      this.ackNow = true;
      this.markDirty();
    }
    if (now >= this.keepaliveAt) {
      this.keepaliveAt = Infinity;
      this.onKeepaliveTimeout(now);
    }
  }

  /** RFC 6298 §5.4-5.6: retransmit the earliest unacknowledged segment, back off, restart. */
  private onRetransmitTimeout(now: number): void {
    const synchronized = isSynchronized(this.state);
    const limit = synchronized ? this.config.maxRetries : this.config.synRetries;
    if (this.retries >= limit) {
      this.host.count('tcp.timeout');
      if (this.state === TcpState.SYN_RECEIVED && !this.activeOpen) this.toClosed('SYN-ACK retransmission limit');
      else this.fail('ETIMEDOUT', 'connection timed out', 'retransmission limit');
      return;
    }
    this.retries++;
    this.rto.backoff();
    this.rttTiming = false; // Karn: never time a retransmitted segment
    this.host.count('tcp.rto');
    if (this.state === TcpState.SYN_SENT || this.state === TcpState.SYN_RECEIVED) {
      this.retransmits++;
      this.host.count('tcp.retransmit');
      this.sendSyn(now);
      return;
    }
    const flight = seqSub(this.sndMax, this.sndUna);
    this.cc.onRto(flight, this.sndMax, this.retries > 1);
    this.dupAcks = 0;
    // Go back to SND.UNA: cwnd is one segment now, so flush() resends just the first one.
    this.sndNxt = this.sndUna;
    this.hasSmallOutstanding = false;
    if (this.sndWnd === 0 && this.sendBuffer.length > 0) {
      // The peer's window is closed: nothing may be resent, and unless we send something its
      // window update may never come (it was lost, or the peer has nothing to send). Probe the
      // zero window (RFC 9293 §3.8.6.1); the persist timer takes over from the retransmission timer.
      this.retransmitAt = Infinity;
      this.onPersistTimeout(now);
      return;
    }
    this.retransmitAt = now + this.rto.rto;
    this.host.reschedule(this);
    this.markDirty();
  }

  private armPersist(now: number): void {
    if (this.persistAt !== Infinity) return;
    // RFC 1122 §4.2.2.17: probe a zero window; the interval backs off exponentially.
    const base = this.rto.rto;
    this.persistAt = now + Math.min(base * (1 << Math.min(this.persistBackoff, 10)), this.config.maxRto);
    this.host.reschedule(this);
  }

  /** A zero-window probe: one byte of new data past the window (RFC 9293 §3.8.6.1). */
  private onPersistTimeout(now: number): void {
    const offset = seqSub(this.sndNxt, this.sndUna);
    if (this.sendBuffer.length - offset <= 0) return;
    if (this.sndWnd > 0) {
      // Not a zero window: sender SWS avoidance was waiting for a bigger one (sendData). Time's up.
      if (offset === 0) {
        this.swsOverride = true;
        this.markDirty();
      }
      return;
    }
    // The connection survives a long zero window while the peer answers probes; it gives up only
    // when probes go unanswered as long as retransmissions would (Linux does the same).
    if (this.keepaliveProbes >= this.config.maxRetries) {
      this.fail('ETIMEDOUT', 'connection timed out', 'zero-window probes unanswered');
      return;
    }
    this.keepaliveProbes++;
    this.host.count('tcp.persist.probe');
    this.emitSegment(this.sndNxt, 1, ACK, now);
    // The probe byte is not "in flight" (no retransmission timer), but the peer may acknowledge it.
    this.probeEnd = seqAdd(this.sndNxt, 1);
    this.persistBackoff++;
    this.armPersist(now);
  }

  /** RFC 1122 §4.2.3.6: a keepalive probe is <SEQ=SND.NXT-1> with no data. */
  private onKeepaliveTimeout(now: number): void {
    if (!this.keepaliveEnabled || !isSynchronized(this.state) || this.state === TcpState.TIME_WAIT) return;
    if (this.sndMax !== this.sndUna || this.sendBuffer.length > 0) {
      // Not idle: data is in flight or waiting, and the retransmission or persist timer watches
      // the peer (RFC 1122 §4.2.3.6 probes an idle connection; Linux does the same).
      this.keepaliveAt = now + this.keepaliveIdle;
      this.host.reschedule(this);
      return;
    }
    if (now - this.lastReceived < this.keepaliveIdle && this.keepaliveProbes === 0) {
      this.keepaliveAt = this.lastReceived + this.keepaliveIdle;
      this.host.reschedule(this);
      return;
    }
    if (this.keepaliveProbes >= this.config.keepaliveCount) {
      this.host.count('tcp.keepalive.timeout');
      this.fail('ETIMEDOUT', 'connection timed out', 'keepalive');
      return;
    }
    this.keepaliveProbes++;
    this.host.count('tcp.keepalive.probe');
    this.emitSegment(seqAdd(this.sndNxt, -1), 0, ACK, now);
    this.keepaliveAt = now + this.config.keepaliveInterval;
    this.host.reschedule(this);
  }

  // ===================================================================================
  // Endings
  // ===================================================================================

  private fail(code: TcpErrorCode, message: string, cause: string): void {
    const user = this.user;
    this.toClosed(cause, false);
    user.onError?.(code, message);
    this.notifyDone(user);
  }

  /** Enter CLOSED and release everything. */
  toClosed(cause: string, notify = true): void {
    if (this.state === TcpState.CLOSED) return;
    this.transition(TcpState.CLOSED, cause);
    this.retransmitAt = this.persistAt = this.delayedAckAt = this.keepaliveAt = this.finWait2At = this.timeWaitUntil = Infinity;
    this.sendBuffer.clear();
    this.ooo = undefined;
    this.ackNow = false;
    this.host.release(this);
    if (notify) this.notifyDone();
  }

  private notifyDone(user: ConnectionUser = this.user): void {
    if (this.doneNotified) return;
    this.doneNotified = true;
    user.onReadable?.();
    user.onClose?.();
  }

  get oooBytes(): number {
    return this.ooo ? this.ooo.bytes : 0;
  }

  /** Buffers holding the in-order data not yet read (see deliver: tiny segments share one). */
  get rcvChunks(): number {
    return this.rcvQueue.length - this.rcvQueueHead;
  }

  info(fmt: (addr: number) => string): ConnectionInfo {
    return {
      local: `${fmt(this.localAddr)}:${this.localPort}`,
      remote: `${fmt(this.remoteAddr)}:${this.remotePort}`,
      state: this.state,
      sndUna: this.sndUna,
      sndNxt: this.sndNxt,
      rcvNxt: this.rcvNxt,
      sndWnd: this.sndWnd,
      rcvWnd: this.rcvWindow(),
      srtt: this.rto.srtt ?? 0,
      rto: this.rto.rto,
      retransmits: this.retransmits,
      cwnd: this.cc.cwnd,
      ssthresh: this.cc.ssthresh,
    };
  }
}

const EMPTY = new Uint8Array(0);
