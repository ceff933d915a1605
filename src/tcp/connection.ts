/**
 * One TCP connection: the transmission control block (TCB) of RFC 9293 §3.3.1 and its event
 * processing (§3.10). Sans-I/O: segments and `now` come in; segments go out through the host
 * (the TcpLayer), and the connection's deadlines are read by the runtime.
 *
 * The concerns live in their own files, as gVisor's tcp/ does:
 *   handshake.ts  SYN-SENT and SYN-RECEIVED (connect.go)     sender.ts    snd.go: window, Nagle, SWS, RTO
 *   listener.ts   LISTEN, SYN and accept queues (accept.go)  receiver.ts  rcv.go: acceptability, reassembly
 *   timers.ts     the deadlines and what each does when it comes
 * This file keeps the state (written only by `transition()`), the user calls of §3.10.1-§3.10.6,
 * and segment arrival as the steps of §3.10.7.4, one short method each.
 */
import type { SetLink } from '../runtime/linked-set.js';
import type { TcpConfig } from './config.js';
import type { SoftError } from './icmp-errors.js';
import { crossedSynAck, openActive, openPassive, synReceivedAck, synRetransmitted, synSentArrives } from './handshake.js';
import type { TcpLimits } from './limits.js';
import type { MemoryBudget } from './memory.js';
import type { Listener } from './listener.js';
import { invalidReplyAllowed, invalidReplyLimitApplies } from './ratelimit.js';
import { Receiver } from './receiver.js';
import { SackReporter } from './sack.js';
import type { SegmentText } from './receiver.js';
import { Sender } from './sender.js';
import { seqAdd, seqGt, seqLeq, seqLt, seqMin, seqSub } from './seq.js';
import type { TcpHeaderFields, TcpOptions, TcpSegment } from './segment.js';
import { ACK, FIN, RST, SYN, TCP_HEADER_LEN, optionsLength, writeTcp } from './segment.js';
import { TcpState, canReceiveData, isSynchronized } from './state.js';
import { Deadlines, Keepalive, peerAlive, runTimers } from './timers.js';
import { FrozenTimeWait } from './time-wait.js';
import type { Timestamps } from './timestamps.js';
import { IPV4_HEADER_LEN } from '../ip/ipv4.js';
import type { VirtioNetHdr } from '../link/virtio.js';
import { tcpTxHeader } from '../link/virtio.js';

export type TcpErrorCode = 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT' | 'EHOSTUNREACH' | 'ENETUNREACH' | 'EPROTO' | 'ENOPROTOOPT';

/** What a connection needs from its surroundings (the TcpLayer). */
export interface ConnectionHost {
  /** Transmit a finished TCP segment; `packet` has IPv4 header room at offset 0; `meta` asks the
   *  link to complete the checksum and, for a super-segment, to cut it into `gsoSize` pieces. */
  output(conn: Connection, packet: Uint8Array, now: number, meta?: VirtioNetHdr): void;
  /** The link does offload: super-segments and partial checksums (TcpLayerOptions.offload). */
  readonly offload?: boolean;
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
  /** The stack's caps and rate limits. */
  readonly limits: TcpLimits;
  /** The stack-wide budget every buffered byte is charged to. */
  readonly memory: MemoryBudget;
  /** The user let go of the connection: it counts as an orphan (capped) until it is done. */
  orphaned(conn: Connection, now: number): void;
  /** `conn` is in TIME-WAIT with its parts rebuilt (or about to be done): call conn.freeze() after the next flush. */
  freezeLater(conn: Connection): void;
  /** Whether there is room for one more connection in TIME-WAIT; false means close at once. */
  admitTimeWait(): boolean;
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

/**
 * The header fields and the options of the segment emitSegment is building: one object each for
 * all connections, filled in per segment, because writeTcp reads them at once and keeps nothing
 * (a new object per segment was garbage at the rate of the packets).
 */
const FIELDS: TcpHeaderFields = { srcPort: 0, dstPort: 0, seq: 0, ack: 0, flags: 0, window: 0, options: undefined };
const SEGMENT_OPTIONS: TcpOptions = { timestamp: undefined, sack: undefined };
const SEGMENT_TIMESTAMP = { value: 0, echo: 0 };

/** The user of a connection nobody holds (yet, or any more): one shared object, not one per connection. */
const NO_USER: ConnectionUser = Object.freeze({});

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
  private _state: TcpState = TcpState.CLOSED;
  user: ConnectionUser = NO_USER;
  /** The listener that created us (passive open), if any. */
  listener: Listener | undefined;
  /** Counted in its listener's SYN queue (SYN-RECEIVED, not yet established). */
  inSynQueue = false;
  /** Set by the layer: the deadline it filed us under in its timer heap. */
  heapAt = Infinity;
  /** Our place in that heap (runtime/deadline-heap.ts), -1 when not filed. */
  heapIndex = -1;
  /** Set by the layer: whether this connection is queued for flush. */
  dirty = false;
  /** The layer's memberships, while they last: its live connections (not TIME-WAIT or CLOSED)
   *  and its orphans (a connection in TIME-WAIT, up to 60 s on a busy server, holds neither). */
  liveLink: SetLink<Connection> | undefined = undefined;
  orphanLink: SetLink<Connection> | undefined = undefined;

  // The parts a connection in TIME-WAIT lets go of (freeze(), time-wait.ts): reached through the
  // getters below, which rebuild them first if they were let go.
  private _snd: Sender | undefined;
  private _rcv: Receiver | undefined;
  private _timers: Deadlines | undefined = new Deadlines();
  private _keepalive: Keepalive | undefined;
  /** TIME-WAIT's record while the parts above are let go. */
  private frozen: FrozenTimeWait | undefined;
  /** What info() shows in TIME-WAIT once the parts were let go and rebuilt (the rebuilt RTT and
   *  congestion state start afresh, and nothing in TIME-WAIT updates them). */
  private timeWaitInfo: FrozenTimeWait | undefined;
  /** We sent the first SYN (active open, or both sides did: simultaneous open). */
  activeOpen = false;
  /** Both SYNs carried the window-scale option (RFC 7323 §2.2). */
  wscaleOk = false;
  /** Timestamps (RFC 7323): present from the start when we offer them; kept only if the peer agrees. */
  ts: Timestamps | undefined;
  /** Both SYNs carried SACK-permitted (RFC 2018 §2): the sender recovers from a scoreboard
   *  (`snd.recovery`) and our ACKs carry SACK blocks (`rcv.sack`). */
  sackOk = false;
  /** When the peer last showed it is alive: the handshake, or an acceptable ACK (`peerAlive`). */
  lastReceived = 0;
  /** The last ICMP soft error (icmp-errors.ts), reported if the connection times out. */
  softError: SoftError | undefined;

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
  /** When we last answered an invalid segment (see replyToInvalid); -Infinity: never. */
  private lastInvalidReplyAt = -Infinity;
  /** Bytes this connection has charged to the stack's memory budget; all given back at CLOSED. */
  private memCharged = 0;
  private memReleased = false;

  constructor(
    readonly host: ConnectionHost,
    readonly config: TcpConfig,
    readonly localAddr: number,
    readonly localPort: number,
    readonly remoteAddr: number,
    readonly remotePort: number,
    mtu: number,
  ) {
    this._rcv = new Receiver(this, mtu - IPV4_HEADER_LEN - TCP_HEADER_LEN);
    this._snd = new Sender(this, config);
    this._keepalive = new Keepalive(config.keepaliveIdle);
  }

  get snd(): Sender {
    return this._snd ?? this.thaw()._snd!;
  }

  get rcv(): Receiver {
    return this._rcv ?? this.thaw()._rcv!;
  }

  get timers(): Deadlines {
    return this._timers ?? this.thaw()._timers!;
  }

  get keepalive(): Keepalive {
    return this._keepalive ?? this.thaw()._keepalive!;
  }

  /** RCV.NXT and SND.MAX, read from the record while frozen: the layer's check of a new SYN for a
   *  4-tuple in TIME-WAIT uses them, and a connection it then closes need not be rebuilt (the
   *  rebuilt parts, referenced from a TIME-WAIT connection the old generation holds, would
   *  themselves be promoted). */
  get rcvNxt(): number {
    return this.frozen ? this.frozen.rcvNxt >>> 0 : this.rcv.nxt;
  }

  get sndMax(): number {
    return this.frozen ? this.frozen.sndMax >>> 0 : this.snd.max;
  }

  /** Whether the connection is in TIME-WAIT with its sender, receiver and timers let go. */
  get isFrozen(): boolean {
    return this.frozen !== undefined;
  }

  /**
   * In TIME-WAIT with nothing pending (the last ACK is out, the user has read everything, no
   * D-SACK owed): let go of the sender, receiver, timers and keepalive and keep their TIME-WAIT
   * variables in a record (time-wait.ts): 751 bytes of heap are left of 1.76 KB. The layer calls
   * this after its flush; anything that reaches for those parts later brings them back (thaw).
   * A connection with something pending then (say, data its user never read) stays whole.
   */
  freeze(): void {
    if (this.state !== TcpState.TIME_WAIT || this.frozen !== undefined || this.dirty) return;
    const snd = this._snd!;
    const rcv = this._rcv!;
    if (rcv.buffered > 0 || rcv.oooBytes > 0 || rcv.ackNow || rcv.sack?.pendingDsack !== undefined) return;
    if (snd.recovery !== undefined || snd.buffer.length > 0) return;
    const t = this._timers!;
    // TIME-WAIT runs no other timer (enterTimeWait cleared them, and an ACK sent cleared the delayed ACK).
    if (t.next() !== t.timeWaitUntil) return;
    this.frozen = new FrozenTimeWait(snd, rcv, t.timeWaitUntil, this._keepalive!);
    this.timeWaitInfo = undefined;
    this._snd = this._rcv = this._timers = this._keepalive = undefined;
  }

  /** Rebuild what freeze() let go, from its record; in TIME-WAIT the layer freezes it again later. */
  private thaw(): this {
    const f = this.frozen!;
    this.frozen = undefined;
    const rcv = (this._rcv = new Receiver(this, f.rcvMss));
    const snd = (this._snd = new Sender(this, this.config));
    f.restore(snd, rcv);
    this._timers = new Deadlines();
    this._timers.timeWaitUntil = f.timeWaitUntil;
    this._keepalive = new Keepalive(f.keepaliveIdle);
    this._keepalive.enabled = f.keepaliveEnabled;
    this.timeWaitInfo = f;
    if (this.state === TcpState.TIME_WAIT) this.host.freezeLater(this);
    return this;
  }

  get state(): TcpState {
    return this._state;
  }

  /** The one place the state changes. The host turns it into a `transition` event and a debug line. */
  transition(to: TcpState, cause: string): void {
    const from = this._state;
    if (from === to) return;
    this._state = to;
    this.host.onTransition(this, from, to, cause);
  }

  // ===================================================================================
  // User calls (RFC 9293 §3.10.1 - §3.10.6)
  // ===================================================================================

  /** Active OPEN: send a SYN. `tsOffset`: this connection's timestamp clock offset (RFC 7323 §5.4). */
  openActive(iss: number, now: number, tsOffset = 0): void {
    openActive(this, iss, now, tsOffset);
  }

  /** Passive open: `listener` received `syn`; we answer with SYN-ACK in SYN-RECEIVED (§3.10.7.2). */
  openPassive(listener: Listener, syn: TcpSegment, iss: number, now: number, tsOffset = 0): void {
    listener.adopt(this);
    openPassive(this, syn, iss, listener.port, now, tsOffset);
  }

  /** Queue user data. Returns true while the send buffer is below its limit. */
  send(data: Uint8Array): boolean {
    if (this.finQueued) return false;
    this.snd.buffer.push(data);
    this.charge(data.length);
    this.markDirty();
    return this.writable;
  }

  get writable(): boolean {
    return this.snd.buffer.length < this.snd.bufLimit;
  }

  /** Charge `bytes` (negative: give back) to the stack's memory budget (memory.ts). */
  charge(bytes: number): void {
    if (this.memReleased) return;
    this.memCharged += bytes;
    this.host.memory.charge(bytes);
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
    const s = this.state;
    if (s === TcpState.CLOSED) return;
    if (s === TcpState.SYN_RECEIVED || s === TcpState.ESTABLISHED || s === TcpState.FIN_WAIT_1 || s === TcpState.FIN_WAIT_2 || s === TcpState.CLOSE_WAIT) {
      this.emitSegment(this.snd.max, 0, RST | ACK, now); // <SEQ=SND.NXT><CTL=RST> (SND.MAX: see sendAck)
      this.host.count('tcp.rst.out');
    }
    this.rcv.flush(); // §3.10.5: queued RECEIVEs get "reset" responses
    this.toClosed(cause);
  }

  /** The user has let go: finish the close on our own (Linux "orphan"). */
  orphan(now: number): void {
    this.orphaned = true;
    this.user = NO_USER;
    if (this.state === TcpState.FIN_WAIT_2) this.timers.finWait2At = now + this.config.finWait2Timeout;
    this.host.reschedule(this);
    this.host.orphaned(this, now);
  }

  /** Take the next chunk of in-order received data, or undefined. */
  read(): Uint8Array | undefined {
    return this.rcv.read();
  }

  /** Bytes received in order and not yet read by the user. */
  get rcvBuffered(): number {
    return this.rcv.buffered;
  }

  get bytesReceived(): number {
    return this.rcv.bytesReceived;
  }

  /** The peer's FIN was received and every byte before it has been read. */
  get readEnded(): boolean {
    return this.finReceived && this.rcv.buffered === 0;
  }

  setKeepAlive(enable: boolean, idleMs: number | undefined, now: number): void {
    const ka = this.keepalive;
    ka.enabled = enable;
    if (idleMs !== undefined && idleMs > 0) ka.idle = idleMs;
    ka.probes = 0;
    this.timers.keepaliveAt = enable && isSynchronized(this.state) ? now + ka.idle : Infinity;
    this.host.reschedule(this);
  }

  // ===================================================================================
  // SEGMENT ARRIVES (RFC 9293 §3.10.7.3 SYN-SENT, §3.10.7.4 other states)
  // ===================================================================================

  onSegment(seg: TcpSegment, now: number): void {
    if (this.state === TcpState.SYN_SENT) return synSentArrives(this, seg, now);
    if (this.state === TcpState.CLOSED || this.state === TcpState.LISTEN) return;
    if (synRetransmitted(this, seg, now)) return;
    const text = this.checkSequence(seg, now);
    if (text === undefined) return;
    if (seg.flags & RST) return this.checkReset(seg, now);
    if (text.syn) return this.checkSyn(now);
    if (!this.checkAck(seg, text, now)) return;
    // sixth: the URG bit — urgent data is delivered in line (RFC 6093); nothing to do.
    if (!this.processText(text, now)) return;
    this.checkFin(text, now);
  }

  /** §3.10.7.4 first: PAWS, the acceptability test, then trimming to the window. Undefined: dropped. */
  private checkSequence(seg: TcpSegment, now: number): SegmentText | undefined {
    const flags = seg.flags;
    const text: SegmentText = { seq: seg.seq, payload: seg.payload, syn: (flags & SYN) !== 0, fin: (flags & FIN) !== 0 };
    const segLen = seg.payload.length + (text.syn ? 1 : 0) + (text.fin ? 1 : 0);
    if (this.isOldByTimestamp(seg, now)) return undefined;
    if (!crossedSynAck(this, seg) && !this.rcv.acceptable(seg.seq, segLen)) {
      // Data entirely below RCV.NXT is a duplicate: report it with a D-SACK (RFC 2883 §4).
      const end = seqAdd(seg.seq, seg.payload.length);
      if (seg.payload.length > 0 && seqLeq(end, this.rcv.nxt)) this.rcv.duplicate(seg.seq, end);
      // "send an acknowledgment ... <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>" (also answers zero-window
      // probes), rate-limited like any answer to an invalid segment.
      if (!(flags & RST) && this.replyToInvalid(seg.payload.length, text.syn, now)) this.scheduleAck();
      this.host.count('tcp.drop.out-of-window');
      // A retransmitted FIN in TIME-WAIT is acceptable only at RCV.NXT-1: ack it and restart 2MSL.
      if (this.state === TcpState.TIME_WAIT && text.fin && !(flags & RST)) this.restartTimeWait(now);
      return undefined;
    }
    // RFC 7323 §4.3: an acceptable segment may move TS.Recent (the rules are in timestamps.ts).
    const tso = seg.options.timestamp;
    if (this.ts?.enabled && tso !== undefined && !(flags & RST)) this.ts.update(seg.seq, tso.value, now);
    this.rcv.trim(text, (flags & RST) !== 0);
    return text;
  }

  /**
   * RFC 7323 §5.3 R1 (PAWS), before the sequence check: a segment whose timestamp is older than
   * TS.Recent is an old duplicate from an earlier wrap of the sequence space. It is dropped and,
   * unless it is a RST (§5.3: RSTs are exempt), answered with an ACK as an unacceptable segment is
   * (and rate-limited as that answer is).
   * A pure ACK at RCV.NXT is let through (Linux's tcp_disordered_ack): ACKs overtaking each other
   * carry no data to protect, and dropping them would only slow the sender down.
   */
  private isOldByTimestamp(seg: TcpSegment, now: number): boolean {
    const tso = seg.options.timestamp;
    if (!this.ts?.enabled || tso === undefined || seg.flags & RST) return false;
    const pureAck = seg.payload.length === 0 && !(seg.flags & (SYN | FIN)) && seg.seq === this.rcv.nxt;
    if (pureAck || !this.ts.isOld(tso.value, now)) return false;
    this.host.count('tcp.drop.paws');
    // Data below RCV.NXT is also a duplicate: D-SACK it (as Linux's tcp_send_dupack).
    if (seg.payload.length > 0 && seqLt(seg.seq, this.rcv.nxt)) {
      this.rcv.duplicate(seg.seq, seqMin(seqAdd(seg.seq, seg.payload.length), this.rcv.nxt));
    }
    // Rate-limited like any answer to an invalid segment (data is always answered), as Linux's
    // tcp_validate_incoming checks tcp_oow_rate_limited before its PAWS dupack.
    if (this.replyToInvalid(seg.payload.length, (seg.flags & SYN) !== 0, now)) this.scheduleAck();
    return true;
  }

  /** §3.10.7.4 second: RFC 5961 §3.2 — reset only on an exact match, else a challenge ACK. */
  private checkReset(seg: TcpSegment, now: number): void {
    if (seg.seq !== this.rcv.nxt) return this.challengeAck(now, 'tcp.rst.challenged');
    this.host.count('tcp.rst.in');
    switch (this.state) {
      case TcpState.SYN_RECEIVED:
        if (this.activeOpen) this.fail('ECONNREFUSED', 'connection refused', 'RST in SYN-RECEIVED');
        else this.toClosed('RST in SYN-RECEIVED'); // back to LISTEN: the listener never saw it
        return;
      case TcpState.ESTABLISHED:
      case TcpState.FIN_WAIT_1:
      case TcpState.FIN_WAIT_2:
      case TcpState.CLOSE_WAIT:
        return this.fail('ECONNRESET', 'connection reset by peer', 'RST received');
      default:
        // CLOSING, LAST-ACK, TIME-WAIT: "enter the CLOSED state, delete the TCB, and return".
        this.toClosed('RST received');
    }
  }

  /** §3.10.7.4 fourth: RFC 5961 §4.2 — a SYN in a synchronized state gets a challenge ACK. */
  private checkSyn(now: number): void {
    // SYN-RECEIVED from a passive OPEN: return to LISTEN (forget this attempt).
    if (this.state === TcpState.SYN_RECEIVED && !this.activeOpen) return this.toClosed('SYN in SYN-RECEIVED');
    this.challengeAck(now, 'tcp.syn.challenged');
  }

  /** §3.10.7.4 fifth: the ACK field. Returns false when processing stops here. */
  private checkAck(seg: TcpSegment, text: SegmentText, now: number): boolean {
    if (!(seg.flags & ACK)) {
      this.host.count('tcp.drop.no-ack');
      return false;
    }
    if (this.state === TcpState.SYN_RECEIVED && !synReceivedAck(this, seg, now)) return false;
    if (!this.snd.onAck(seg, now)) return false;
    peerAlive(this, now);
    if (this.finAcked && !this.ourFinAcked(now)) return false;
    if (this.state === TcpState.CLOSED) return false; // a user callback may have aborted
    if (this.state !== TcpState.TIME_WAIT) return true;
    // The only thing that can arrive in TIME-WAIT is a retransmission of the remote FIN.
    if (text.fin) {
      this.scheduleAck();
      this.restartTimeWait(now);
    }
    return false;
  }

  /** §3.10.7.4 fifth, the FIN-acked cases. Returns false when the connection is done (TIME-WAIT, CLOSED). */
  private ourFinAcked(now: number): boolean {
    switch (this.state) {
      case TcpState.FIN_WAIT_1:
        this.transition(TcpState.FIN_WAIT_2, 'ACK of our FIN');
        if (this.orphaned) this.timers.finWait2At = now + this.config.finWait2Timeout;
        this.host.reschedule(this);
        return true;
      case TcpState.CLOSING:
        this.enterTimeWait(now, 'ACK of our FIN');
        return false;
      case TcpState.LAST_ACK:
        this.toClosed('ACK of our FIN');
        return false;
      default:
        return true;
    }
  }

  /** §3.10.7.4 seventh: the segment text. Returns false when processing stops here. */
  private processText(text: SegmentText, now: number): boolean {
    if (text.payload.length === 0) return true;
    if (canReceiveData(this.state) && !this.orphaned && !this.host.memory.allows(text.payload.length)) {
      // Over the stack's memory limit: refuse the data (and a FIN behind it) as a full buffer
      // would; the duplicate ACK tells the sender where we are, and it retransmits later.
      this.host.count('tcp.mem.dropped');
      this.sendAck(now);
      return false;
    }
    if (!canReceiveData(this.state)) {
      this.host.count('tcp.drop.data-after-fin');
    } else if (this.orphaned) {
      // Nobody will ever read this: tell the peer (RFC 1122 §4.2.2.13, as Linux does).
      this.host.count('tcp.rst.data-on-closed');
      this.abort(now, 'data after close');
      return false;
    } else {
      this.rcv.text(text.seq, text.payload, text.fin, now);
    }
    return true;
  }

  /** §3.10.7.4 eighth: the FIN bit, acted on once every byte before it has arrived. */
  private checkFin(text: SegmentText, now: number): void {
    if (!text.fin || this.finReceived) return;
    const end = seqAdd(text.seq, text.payload.length);
    if (end === this.rcv.nxt) this.receiveFin(now, 'FIN received');
    else if (seqGt(end, this.rcv.nxt)) {
      // Out of order: remember where the stream ends, and send a duplicate ACK at once as for
      // any out-of-order segment (RFC 5681 §4.2).
      this.rcv.peerFinSeq = end;
      if (text.payload.length === 0) this.sendAck(now);
    }
  }

  /** The peer's FIN, in order (§3.10.7.4 eighth). */
  receiveFin(now: number, cause: string): void {
    this.rcv.nxt = seqAdd(this.rcv.nxt, 1);
    this.finReceived = true;
    this.scheduleAck();
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

  /**
   * Whether to answer an invalid segment (out of window, an unacceptable ACK, RFC 5961's
   * challenges): at most once per limits.invalidReplyIntervalMs on this connection, as Linux's
   * tcp_invalid_ratelimit, so a flood of bad segments is not a flood of answers. A data segment
   * is always answered (its sender needs the duplicate ACK; ratelimit.ts).
   */
  replyToInvalid(payloadLength: number, syn: boolean, now: number): boolean {
    if (!invalidReplyLimitApplies(payloadLength, syn)) return true;
    if (!invalidReplyAllowed(this.lastInvalidReplyAt, now, this.host.limits.invalidReplyIntervalMs)) {
      this.host.count('tcp.invalid-reply.limited');
      return false;
    }
    this.lastInvalidReplyAt = now;
    return true;
  }

  /** RFC 5961 §3.2 / §4.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, rate-limited per connection and globally (§7). */
  private challengeAck(now: number, counter: string): void {
    this.host.count(counter);
    if (!this.replyToInvalid(0, true, now)) return;
    if (!this.host.allowChallengeAck(now)) {
      this.host.count('tcp.challenge-ack.limited');
      return;
    }
    this.host.count('tcp.challenge-ack.out');
    this.scheduleAck();
  }

  // ===================================================================================
  // Output
  // ===================================================================================

  markDirty(): void {
    if (!this.dirty) this.host.markDirty(this);
  }

  /** An ACK is owed: it goes with the next flush (on data if any leaves, else bare). */
  scheduleAck(): void {
    this.rcv.ackNow = true;
    this.markDirty();
  }

  /** Send what the windows allow, then a bare ACK if one is owed and nothing carried it. */
  flush(now: number): void {
    this.dirty = false;
    let sent = false;
    switch (this.state) {
      case TcpState.ESTABLISHED:
      case TcpState.CLOSE_WAIT:
      case TcpState.FIN_WAIT_1:
      case TcpState.CLOSING:
      case TcpState.LAST_ACK:
        sent = this.snd.sendData(now);
        break;
      case TcpState.CLOSED:
        return;
      default:
        break;
    }
    if (this.rcv.ackNow && !sent) this.sendAck(now);
  }

  /**
   * <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, where the RFC's SND.NXT is our SND.MAX: our SND.NXT goes
   * back to SND.UNA after a retransmission timeout, and an ACK numbered from there would lie
   * below the RCV.NXT of a peer that already has the data, which drops it unread as an old
   * segment (RFC 9293 §3.10.7.4 "first") — and with it our acknowledgment of its data.
   */
  sendAck(now: number): void {
    this.emitSegment(this.snd.max, 0, ACK, now);
  }

  emitRst(seq: number, now: number): void {
    this.host.count('tcp.rst.out');
    this.emitSegment(seq, 0, RST, now);
  }

  /** Build one segment (header, options, `len` bytes from the send buffer at `seq`) and hand it to the host. */
  emitSegment(seq: number, len: number, flags: number, now: number, options?: TcpOptions): void {
    const window = flags & RST && !(flags & ACK) ? 0 : this.rcv.windowField((flags & SYN) !== 0);
    if (flags & RST) options = this.resetOptions(now);
    else if (!(flags & SYN)) options = this.segmentOptions(len, (flags & ACK) !== 0, now);
    const optLen = options ? optionsLength(options) : 0;
    const tcpOff = IPV4_HEADER_LEN;
    const packet = Buffer.allocUnsafe(tcpOff + TCP_HEADER_LEN + optLen + len);
    if (len > 0) this.snd.buffer.copyOut(seqSub(seq, this.snd.una), len, packet, tcpOff + TCP_HEADER_LEN + optLen);
    const fields = FIELDS;
    fields.srcPort = this.localPort;
    fields.dstPort = this.remotePort;
    fields.seq = seq;
    fields.ack = flags & ACK ? this.rcv.nxt : 0;
    fields.flags = flags;
    fields.window = window;
    fields.options = options;
    // With offload the link completes the checksum (the payload is then only copied, never summed
    // here), and cuts a segment longer than the MSS into MSS-sized ones, each with this header.
    const offload = this.host.offload === true;
    writeTcp(packet, tcpOff, fields, len, this.localAddr, this.remoteAddr, offload);
    if (flags & ACK) {
      this.rcv.ackSent();
      this.ts?.ackSent(this.rcv.nxt); // RFC 7323 §4.3 Last.ACK.sent
    }
    this.host.count('tcp.out');
    if (!offload) return this.host.output(this, packet, now);
    if (len > this.snd.mss) this.host.count('tcp.out.gso');
    this.host.output(this, packet, now, tcpTxHeader(tcpOff, TCP_HEADER_LEN + optLen, len, this.snd.mss));
  }

  /**
   * Options of a RST we send from a synchronized connection (an abort, data after close): the
   * timestamp, which RFC 7323 §3.2 says SHOULD be sent on a RST too (Linux's active resets carry
   * it), so a peer that checks PAWS on RSTs still accepts it. A RST in reply to a segment for no
   * connection has no timestamp to send (the layer builds those).
   */
  private resetOptions(now: number): TcpOptions | undefined {
    const ts = this.ts?.enabled ? this.ts : undefined;
    return ts ? { timestamp: { value: ts.value(now), echo: ts.echo() } } : undefined;
  }

  /**
   * Options of a synchronized, non-RST segment: the timestamp on every one (RFC 7323 §3.2), and on
   * an ACK the SACK blocks (RFC 2018 §4, D-SACK first, RFC 2883) that fit in the option space and
   * leave header + data within the peer's MSS (the data was already cut to leave room for the
   * timestamp; blocks come out of what is left).
   */
  private segmentOptions(len: number, isAck: boolean, now: number): TcpOptions | undefined {
    const ts = this.ts?.enabled ? this.ts : undefined;
    if (ts === undefined && !this.sackOk) return undefined;
    const o = SEGMENT_OPTIONS;
    o.timestamp = undefined;
    o.sack = undefined;
    if (ts) {
      SEGMENT_TIMESTAMP.value = ts.value(now);
      SEGMENT_TIMESTAMP.echo = ts.echo();
      o.timestamp = SEGMENT_TIMESTAMP;
    }
    if (this.sackOk && isAck && (this.rcv.sack?.pendingDsack !== undefined || this.rcv.oooRanges > 0)) {
      const sack = (this.rcv.sack ??= new SackReporter());
      // Bytes a full segment has left besides the timestamp's; none in a super-segment, whose
      // pieces are full-sized and all carry this header.
      const room = Math.max(0, this.snd.mss - len);
      const blocks = sack.blocks(this.rcv.sackRanges(), Math.max(0, Math.min(ts ? 3 : 4, Math.floor((room - 4) / 8))));
      if (blocks.length > 0) o.sack = blocks;
    }
    return o;
  }

  // ===================================================================================
  // Timers (timers.ts) and endings
  // ===================================================================================

  nextDeadline(): number {
    return this.frozen ? this.frozen.timeWaitUntil : this.timers.next();
  }

  onTimer(now: number): void {
    // Frozen, the only timer is TIME-WAIT's end (runTimers' first case), and nothing is left to clear.
    if (this.frozen) {
      if (now >= this.frozen.timeWaitUntil) this.toClosed('2*MSL timeout');
      return;
    }
    runTimers(this, now);
  }

  private enterTimeWait(now: number, cause: string): void {
    // No room in the TIME-WAIT table: skip TIME-WAIT, as Linux does past tcp_max_tw_buckets.
    if (!this.host.admitTimeWait()) {
      this.sendAck(now); // the peer's FIN still gets its ACK
      return this.toClosed(`${cause}; TIME-WAIT table full`);
    }
    this.transition(TcpState.TIME_WAIT, cause);
    const t = this.timers;
    t.retransmitAt = t.persistAt = t.keepaliveAt = t.finWait2At = t.probeAt = t.reorderAt = Infinity;
    this.charge(-this.snd.buffer.length);
    this.snd.buffer.clear();
    this.rcv.dropOutOfOrder();
    this.snd.forgetRecovery();
    this.restartTimeWait(now);
    this.notifyDone();
    this.host.freezeLater(this); // once the ACK of the FIN is out
  }

  private restartTimeWait(now: number): void {
    this.timers.timeWaitUntil = now + 2 * this.config.msl;
    this.host.reschedule(this);
  }

  /**
   * Give up on a peer that does not answer: ETIMEDOUT, or the soft error an ICMP message reported
   * meanwhile (RFC 1122 §4.2.3.9; Linux reports its sk_err_soft the same way).
   */
  timedOut(cause: string): void {
    const soft = this.softError;
    if (soft) this.fail(soft.code, soft.message, `${cause} (${soft.message})`);
    else this.fail('ETIMEDOUT', 'connection timed out', cause);
  }

  /** Enter CLOSED and tell the user with a Node-style error code. */
  fail(code: TcpErrorCode, message: string, cause: string): void {
    const user = this.user;
    this.rcv.flush(); // the user gets the error, not the rest of the data
    this.toClosed(cause, false);
    user.onError?.(code, message);
    this.notifyDone(user);
  }

  /** Enter CLOSED and release everything. */
  toClosed(cause: string, notify = true): void {
    if (this.state === TcpState.CLOSED) return;
    this.transition(TcpState.CLOSED, cause);
    if (this.frozen === undefined) {
      // (A frozen connection holds no timers, buffers or queues to clear.)
      this.timers.clear();
      this.snd.buffer.clear();
      this.snd.recovery?.clear();
      this.rcv.dropOutOfOrder();
      this.rcv.ackNow = false;
    }
    // Give back everything, unread data included: the application may still read that, but it
    // no longer counts against the stack's budget.
    this.host.memory.charge(-this.memCharged);
    this.memCharged = 0;
    this.memReleased = true;
    this.host.release(this);
    if (notify) this.notifyDone();
  }

  private notifyDone(user: ConnectionUser = this.user): void {
    if (this.doneNotified) return;
    this.doneNotified = true;
    user.onReadable?.();
    user.onClose?.();
  }

  info(fmt: (addr: number) => string): ConnectionInfo {
    const local = `${fmt(this.localAddr)}:${this.localPort}`;
    const remote = `${fmt(this.remoteAddr)}:${this.remotePort}`;
    const f = this.frozen;
    if (f) {
      // Read from the record: listing TIME-WAIT connections must not rebuild them.
      return {
        local, remote, state: this.state,
        sndUna: f.sndUna >>> 0, sndNxt: f.sndNxt >>> 0, rcvNxt: f.rcvNxt >>> 0, sndWnd: f.sndWnd,
        rcvWnd: Math.max(0, seqSub(f.rcvAdv >>> 0, f.rcvNxt >>> 0)),
        srtt: f.srtt, rto: f.rto, retransmits: f.retransmits, cwnd: f.cwnd, ssthresh: f.ssthresh,
      };
    }
    const last = this.state === TcpState.TIME_WAIT ? this.timeWaitInfo : undefined;
    return {
      local,
      remote,
      state: this.state,
      sndUna: this.snd.una,
      sndNxt: this.snd.nxt,
      rcvNxt: this.rcv.nxt,
      sndWnd: this.snd.wnd,
      rcvWnd: this.rcv.window(),
      srtt: last ? last.srtt : (this.snd.rto.srtt ?? 0),
      rto: last ? last.rto : this.snd.rto.rto,
      retransmits: this.snd.retransmits,
      cwnd: last ? last.cwnd : this.snd.cc.cwnd,
      ssthresh: last ? last.ssthresh : this.snd.cc.ssthresh,
    };
  }
}
