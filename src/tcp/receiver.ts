/**
 * The receiving half of a connection (gVisor's rcv.go): the receive sequence variables of RFC 9293
 * §3.3.1, the segment acceptability test and trimming (§3.10.7.4 "first"), in-order delivery to
 * the user's queue, the out-of-order queue, the receive window with receiver SWS avoidance
 * (RFC 1122 §4.2.3.3), when an ACK is owed (delayed ACK, RFC 1122 §4.2.3.2 / RFC 5681 §4.2), and
 * the SACK blocks it carries (RFC 2018 §4, D-SACK RFC 2883).
 */
import type { Connection } from './connection.js';
import { OutOfOrderQueue } from './reassembly.js';
import { SackReporter } from './sack.js';
import { seqAdd, seqGt, seqLeq, seqLt, seqSub } from './seq.js';
import { TcpState, isSynchronized } from './state.js';

/** Longest ACK delay we allow whatever the configuration: Linux's TCP_DELACK_MAX, well under the
 *  500 ms of RFC 1122 §4.2.3.2, because the peer's RTO may be as short as 200 ms. */
export const MAX_DELAYED_ACK_MS = 200;

/** Unread in-order data arriving in pieces smaller than this is joined into one buffer (see deliver). */
export const RCV_COALESCE_BYTES = 2048;

/** In-order data at least this long, in a buffer of its own but for RCV_KEEP_VIEW_SLACK bytes, is
 *  kept without a copy (see deliver). */
export const RCV_KEEP_VIEW_BYTES = 16 * 1024;
export const RCV_KEEP_VIEW_SLACK = 256;

/** The part of an arriving segment that lies in sequence space, trimmed to the window. */
export interface SegmentText {
  seq: number;
  payload: Uint8Array;
  syn: boolean;
  fin: boolean;
}

const EMPTY = new Uint8Array(0);

export class Receiver {
  // --- Receive sequence variables (RFC 9293 §3.3.1) ---
  irs = 0;
  nxt = 0;
  /** Right edge of the window we last advertised (RCV.NXT + RCV.WND at that time). */
  adv = 0;
  /** Our window scale shift (RFC 7323 §2.2); 0 unless both SYNs carried the option. */
  wscale = 0;
  /** Our MSS (from the MTU), announced in our SYN. */
  readonly mss: number;

  /** Bytes received in order and not yet read by the user. */
  buffered = 0;
  bytesReceived = 0;
  /** An ACK is owed and goes with the next flush. */
  ackNow = false;
  /** Sequence number of the peer's FIN when it arrived out of order. */
  peerFinSeq: number | undefined;
  /** The SACK blocks our ACKs carry, when both SYNs agreed to SACK (`c.sackOk`); created with the
   *  first duplicate or out-of-order segment, which are rare. */
  sack: SackReporter | undefined;

  /** The receive buffer now: starts at config.initialRcvBuf, autotuned up to config.rcvBuf. */
  bufSize: number;

  private queue: Uint8Array[] = [];
  private head = 0;
  private ooo: OutOfOrderQueue | undefined;
  private unackedBytes = 0;
  // Receive-buffer autotuning (Linux tcp_rcv_space_adjust): bytes the application read since
  // `spaceStart`, and in the round trip before.
  private copied = 0;
  private space = 0;
  private spaceStart = 0;

  constructor(
    private readonly c: Connection,
    mss: number,
  ) {
    this.mss = mss;
    this.bufSize = Math.min(c.config.initialRcvBuf, c.config.rcvBuf);
  }

  /** The peer's ISN: its SYN occupies it, so its data starts at irs + 1. */
  init(irs: number): void {
    this.irs = irs;
    this.nxt = seqAdd(irs, 1);
  }

  /** The receive window we consider ourselves bound to: what we last advertised. */
  window(): number {
    return Math.max(0, seqSub(this.adv, this.nxt));
  }

  /** §3.10.7.4 "first": the four cases of segment acceptability. */
  acceptable(seq: number, segLen: number): boolean {
    const wnd = this.window();
    if (segLen === 0) {
      if (wnd === 0) return seq === this.nxt;
      return seqLeq(this.nxt, seq) && seqLt(seq, seqAdd(this.nxt, wnd));
    }
    if (wnd === 0) return false;
    const end = seqAdd(seq, segLen - 1);
    const hi = seqAdd(this.nxt, wnd);
    return (seqLeq(this.nxt, seq) && seqLt(seq, hi)) || (seqLeq(this.nxt, end) && seqLt(end, hi));
  }

  /** Trim what lies before RCV.NXT (already received), beyond the window, and beyond a held FIN. */
  trim(t: SegmentText, rst: boolean): void {
    if (seqLt(t.seq, this.nxt)) {
      let skip = seqSub(this.nxt, t.seq);
      // The data below RCV.NXT arrived before: a duplicate (RFC 2883 §4, D-SACK).
      const first = t.syn ? 1 : 0;
      const dup = Math.min(skip - first, t.payload.length);
      if (dup > 0) this.duplicate(seqAdd(t.seq, first), seqAdd(t.seq, first + dup));
      if (t.syn) {
        // The SYN occupies the first sequence number: it is old. Only the crossed SYN-ACK of a
        // simultaneous open (SYN-RECEIVED) goes on as a plain ACK; in any other synchronized
        // state a SYN keeps its bit, so step four answers it with a challenge ACK and nothing it
        // carries is taken (RFC 5961 §4.2: "irrespective of the sequence number"; Linux's
        // tcp_validate_incoming does the same).
        if (this.c.state === TcpState.SYN_RECEIVED) t.syn = false;
        skip--;
      }
      if (skip > t.payload.length) t.fin = false; // the FIN is old too
      t.payload = t.payload.subarray(Math.min(skip, t.payload.length));
      t.seq = this.nxt;
    }
    const wnd = this.window();
    if (t.payload.length > wnd && !rst) {
      t.payload = t.payload.subarray(0, Math.max(0, wnd));
      t.fin = false; // the FIN lies beyond the window: it will come again
    }
    // The peer's FIN, held out of order, ends its sequence space: nothing lies beyond it
    // (RFC 9293 §3.10.7.4 eighth: the FIN is the last octet the peer sends).
    if (this.peerFinSeq !== undefined && seqGt(seqAdd(t.seq, t.payload.length), this.peerFinSeq)) {
      this.c.host.count('tcp.drop.beyond-fin');
      t.payload = t.payload.subarray(0, Math.max(0, seqSub(this.peerFinSeq, t.seq)));
    }
  }

  /** §3.10.7.4 "seventh": in-order text goes to the user, out-of-order text to the reassembly queue. */
  text(seq: number, payload: Uint8Array, fin: boolean, now: number): void {
    if (seq !== this.nxt) {
      this.outOfOrder(seq, payload, fin, now);
      return;
    }
    this.deliver(payload);
    this.nxt = seqAdd(this.nxt, payload.length);
    // RFC 5681 §4.2: a segment that fills all *or part* of a gap is ACKed at once, so the
    // sender in recovery learns quickly; any in-order segment while data waits beyond it does,
    // and so does one while the peer's FIN waits beyond it (Linux queues that FIN out of order
    // too, and ACKs at once while its out-of-order queue is not empty).
    const filledHole = (this.ooo !== undefined && this.ooo.count > 0) || this.peerFinSeq !== undefined;
    if (this.ooo && this.ooo.count > 0) {
      const held = this.ooo.bytes;
      const chunks = this.ooo.take(this.nxt);
      this.c.charge(this.ooo.bytes - held); // moved to the in-order queue, which charges them again
      for (const chunk of chunks) {
        this.deliver(chunk);
        this.nxt = seqAdd(this.nxt, chunk.length);
      }
      if (this.ooo.count === 0) this.ooo = undefined;
    }
    this.unackedBytes += payload.length;
    // RFC 5681 §4.2: ACK at once when a segment fills a hole; RFC 1122 §4.2.3.2: ACK at least
    // every second full-sized segment; otherwise within the delayed-ACK time. "Full-sized" is the
    // peer's segment size, min(its MSS option, ours) = the send MSS, which may be smaller than ours.
    if (filledHole || this.unackedBytes >= 2 * this.c.snd.mss || fin) {
      this.ackNow = true;
    } else if (this.c.timers.delayedAckAt === Infinity) {
      this.c.timers.delayedAckAt = now + Math.min(this.c.config.delayedAckMs, MAX_DELAYED_ACK_MS);
      this.c.host.reschedule(this.c);
    }
    this.c.markDirty();
    if (this.peerFinSeq !== undefined && this.peerFinSeq === this.nxt && !fin) {
      this.peerFinSeq = undefined;
      this.c.receiveFin(now, 'FIN received (after reassembly)');
    }
    this.c.user.onReadable?.();
  }

  /** Out of order: keep it (bounded) and send a duplicate ACK at once (RFC 5681 §4.2). */
  private outOfOrder(seq: number, payload: Uint8Array, fin: boolean, now: number): void {
    if (this.c.host.memory.underPressure) {
      // Under memory pressure out-of-order data is not kept, and what is held goes (Linux prunes
      // the out-of-order queue first, tcp_prune_ofo_queue): the sender retransmits it.
      if (this.ooo) this.c.host.count('tcp.mem.ooo-pruned');
      this.dropOutOfOrder();
      this.c.host.count('tcp.ooo.dropped');
    } else {
      this.ooo ??= new OutOfOrderQueue(this.c.config.oooMaxBytes);
      const held = this.ooo.bytes;
      const stored = this.ooo.insert(seq, payload, this.nxt, this.window());
      this.c.charge(this.ooo.bytes - held);
      this.c.host.count(stored > 0 ? 'tcp.ooo.queued' : 'tcp.ooo.dropped');
      // Already held: a duplicate of out-of-order data (RFC 2883 §4.2).
      if (stored === 0 && this.ooo.holds(seq, payload.length, this.nxt)) this.duplicate(seq, seqAdd(seq, payload.length));
    }
    if (fin) this.peerFinSeq = seqAdd(seq, payload.length);
    // One duplicate ACK per out-of-order segment, sent now rather than coalesced into the
    // batch's single ACK: the sender counts them (three trigger fast retransmit, RFC 5681 §3.2),
    // and a data segment carrying the same ACK does not count as a duplicate (RFC 5681 §2).
    this.c.sendAck(now);
  }

  private deliver(data: Uint8Array): void {
    // Keep a copy of just these bytes (a packet is often a view into a larger batch buffer, which a
    // kept view would pin), except a large segment alone in its buffer (below). A small segment is
    // appended to the last unread chunk while the two fit in RCV_COALESCE_BYTES (one copy of at most
    // that much), so two neighbouring chunks always hold more than that together: a peer sending
    // 1-byte segments to a reader that has stopped reading cannot make us keep one buffer object
    // (about a hundred bytes of memory) per byte it sent. (Linux charges each buffer's real size,
    // truesize, against the receive buffer and collapses queues of small ones for the same reason.)
    const queue = this.queue;
    const last = queue.length > this.head ? queue[queue.length - 1]! : undefined;
    if (data.length >= RCV_KEEP_VIEW_BYTES && data.buffer.byteLength - data.length <= RCV_KEEP_VIEW_SLACK) {
      // A large segment (an offload super-segment) alone in its buffer: keep it as it is, no copy.
      // It holds no more memory than a copy would (the slack is its headers), and the link has
      // handed it over for good (src/link: a packet is never reused once delivered).
      queue.push(Buffer.from(data.buffer, data.byteOffset, data.length));
    } else if (last !== undefined && last.length + data.length <= RCV_COALESCE_BYTES) {
      const joined = Buffer.allocUnsafe(last.length + data.length);
      joined.set(last);
      joined.set(data, last.length);
      queue[queue.length - 1] = joined;
    } else {
      const copy = Buffer.allocUnsafe(data.length);
      copy.set(data);
      queue.push(copy);
    }
    this.buffered += data.length;
    this.bytesReceived += data.length;
    this.c.charge(data.length);
  }

  /** Take the next chunk of in-order received data, or undefined. */
  read(): Uint8Array | undefined {
    if (this.head >= this.queue.length) return undefined;
    const chunk = this.queue[this.head]!;
    this.queue[this.head++] = EMPTY;
    if (this.head === this.queue.length) {
      // All read: start the queue afresh (an idle connection holds no array storage).
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.buffered -= chunk.length;
    this.c.charge(-chunk.length);
    this.autotune(chunk.length);
    this.maybeWindowUpdate();
    return chunk;
  }

  /**
   * Receive-buffer autotuning (Linux tcp_rcv_space_adjust): once per round trip, if the
   * application read more than in the one before, the buffer grows to twice that, so the
   * window never limits a reader that keeps up, and a reader that does not never gets more
   * than its initial window. Under memory pressure it does not grow, and falls back to the
   * initial size for the windows advertised from now on (the right edge already offered
   * stays, RFC 9293 §3.8.6.2.2). read() has no clock: the time of the last acceptable segment stands in.
   */
  private autotune(bytes: number): void {
    const c = this.c;
    const initial = Math.min(c.config.initialRcvBuf, c.config.rcvBuf);
    if (c.host.memory.underPressure) {
      if (this.bufSize > initial) c.host.count('tcp.mem.window-shrunk');
      this.bufSize = initial;
      return;
    }
    this.copied += bytes;
    const now = c.lastReceived;
    const rtt = c.snd.rto.srtt ?? c.config.minRto;
    if (now - this.spaceStart < Math.max(rtt, 1)) return;
    if (this.copied > this.space) {
      const grown = Math.min(c.config.rcvBuf, 2 * this.copied);
      if (grown > this.bufSize) {
        this.bufSize = grown;
        c.host.count('tcp.rcvbuf.grown');
      }
    }
    this.space = this.copied;
    this.copied = 0;
    this.spaceStart = now;
  }

  /**
   * After the user read data: send a window update if the window the peer knows (the edge we last
   * advertised) is below one MSS, so it cannot send a full segment, or if the window we can offer
   * now is larger by at least half the buffer (Linux's tcp_cleanup_rbuf sends one when the new
   * window is at least twice the known one). Compared with what the peer knows, not with what we
   * could have offered before this read: reads of small chunks add up. The offer itself already
   * follows receiver SWS avoidance (RFC 1122 §4.2.3.3, windowToAdvertise); this only decides when
   * an opened window is worth an ACK of its own (RFC 9293 §3.8.6.2.2 leaves that to us).
   */
  private maybeWindowUpdate(): void {
    if (!isSynchronized(this.c.state) || this.c.finReceived) return;
    const known = this.window();
    const offer = this.windowToAdvertise();
    if (offer > known && (known < this.mss || offer - known >= this.effectiveBufSize / 2)) this.c.scheduleAck();
  }

  /**
   * The receive buffer in force: the autotuned size, but only the initial one while the stack is
   * under memory pressure, so the windows advertised from then on stay small (Linux clamps them
   * the same way, tcp_clamp_window). The edge already offered stays (RFC 9293 §3.8.6.2.2).
   */
  get effectiveBufSize(): number {
    if (!this.c.host.memory.underPressure) return this.bufSize;
    return Math.min(this.bufSize, this.c.config.initialRcvBuf);
  }

  /** The window we would advertise now, applying receiver SWS avoidance (RFC 1122 §4.2.3.3). */
  private windowToAdvertise(): number {
    const rcvBuf = this.effectiveBufSize;
    const free = Math.max(0, rcvBuf - this.buffered - this.oooBytes);
    const current = this.window();
    // Move the right edge only by at least min(half the buffer, one MSS); never shrink it (§3.8.6.2.2).
    if (free - current >= Math.min(rcvBuf / 2, this.mss)) return free;
    return current;
  }

  /** The window field of an outgoing segment; moves the advertised right edge (RCV.ADV) on. */
  windowField(isSyn: boolean): number {
    const wnd = this.windowToAdvertise();
    // The window field of a SYN is never scaled (RFC 7323 §2.2); elsewhere it is shifted by ours.
    let field = isSyn ? wnd : wnd >>> this.wscale;
    // The shift rounds down, which would pull the right edge back (by up to 2^shift - 1 bytes)
    // below what we already offered (RFC 7323 appendix F). Round up instead: the window never
    // shrinks (RFC 9293 §3.8.6.2.2), at the cost of accepting those few bytes more (as Linux does).
    // Only while the window already offered is backed by free buffer space, though: rounding up
    // an overcommitted window again and again would move the edge on by up to a unit per ACK, and
    // a peer sending small segments could fill our memory without bound.
    const offered = this.window();
    const free = this.effectiveBufSize - this.buffered - this.oooBytes;
    if (!isSyn && field << this.wscale < offered && offered <= free) field = Math.ceil(offered / (1 << this.wscale));
    const window = Math.min(field, 65535);
    const advertised = isSyn ? window : window << this.wscale;
    const edge = seqAdd(this.nxt, advertised);
    if (seqGt(edge, this.adv)) this.adv = edge;
    return window;
  }

  /** A segment carrying our ACK went out: nothing is owed any more. */
  ackSent(): void {
    this.ackNow = false;
    this.unackedBytes = 0;
    this.c.timers.delayedAckAt = Infinity;
  }

  /** [start, end) arrived a second time: the next ACK reports it in a D-SACK block (RFC 2883). */
  duplicate(start: number, end: number): void {
    if (!this.c.sackOk) return;
    (this.sack ??= new SackReporter()).duplicate(start, end);
    this.c.host.count('tcp.dsack.out');
  }

  /** Out-of-order ranges held (what SACK blocks can report). */
  get oooRanges(): number {
    return this.ooo ? this.ooo.count : 0;
  }

  /** The out-of-order ranges as SACK blocks, most recently changed first (RFC 2018 §4). */
  sackRanges(): Array<[number, number]> {
    return this.ooo ? this.ooo.sackBlocks(4) : [];
  }

  /**
   * Drop the data the user has not read: the connection was reset or aborted, and the user gets
   * an error instead of it (RFC 9293 §3.10.7.4 second, for a RST: "all segment queues should be flushed"; §3.10.5 ABORT).
   * A connection that ends normally keeps it for the user to read.
   */
  flush(): void {
    this.queue = [];
    this.head = 0;
    this.buffered = 0;
  }

  /** Drop the out-of-order data (the connection is closing). */
  dropOutOfOrder(): void {
    if (this.ooo) this.c.charge(-this.ooo.bytes);
    this.ooo = undefined;
  }

  get oooBytes(): number {
    return this.ooo ? this.ooo.bytes : 0;
  }

  /** Buffers holding the in-order data not yet read (see deliver: tiny segments share one). */
  get chunks(): number {
    return this.queue.length - this.head;
  }
}
