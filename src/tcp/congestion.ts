/**
 * Congestion control behind a small interface, so that another algorithm (CUBIC, RFC 9438)
 * can replace NewReno without touching the connection: the connection reports ACKs,
 * duplicate ACKs and timeouts, and sends no more than min(cwnd, peer's window) beyond SND.UNA.
 *
 * NewReno: RFC 5681 (slow start, congestion avoidance, fast retransmit / fast recovery)
 * with RFC 6582's partial-ACK handling, and RFC 6928's initial window of 10 segments.
 * All quantities are bytes.
 *
 *   cwnd
 *    ^              3 dup ACKs                          RTO
 *    |         /|   (halve, then +1 MSS per RTT)         |
 *    |        / |          ___/|                         |
 *    |       /  |      ___/    |    ___/                 |
 *    |      /   |  ___/        |___/                     |     /
 *    |     /    |_/                                      |  __/   slow start again,
 *    |  __/  slow start: doubles every RTT               |_/      up to ssthresh
 *    +------------------------------------------------------------------> time
 */
import { seqGeq } from './seq.js';

export interface CongestionControl {
  readonly name: string;
  /** Congestion window in bytes. */
  readonly cwnd: number;
  /** Slow-start threshold in bytes (0x7fffffff until the first loss). */
  readonly ssthresh: number;
  readonly inRecovery: boolean;
  /** New data acknowledged: `acked` bytes up to `ack`. `flight` = bytes outstanding before this ACK.
   *  `rtt` = the smoothed RTT in ms, if known (CUBIC looks one RTT ahead).
   *  Returns 'partial' when a partial ACK in fast recovery asks for the next hole to be retransmitted
   *  (NewReno recovery only; SACK recovery retransmits from the scoreboard), 'exit' when this ACK
   *  ends fast recovery. */
  onAck(acked: number, ack: number, flight: number, now: number, rtt?: number): 'none' | 'partial' | 'exit';
  /** The `dupAcks`-th duplicate ACK in a row (RFC 5681 §2 definition). Returns 'retransmit' on the
   *  one that starts fast retransmit. `sndMax` = highest sequence number sent so far, plus one. */
  onDupAck(dupAcks: number, ack: number, flight: number, sndMax: number): 'none' | 'retransmit';
  /** The retransmission timer expired. `repeated`: the segment had already been retransmitted by
   *  the timer (a backed-off timeout), in which case ssthresh is held (RFC 5681 §3.1). */
  onRto(flight: number, sndMax: number, repeated: boolean): void;
  /** Our SYN or SYN-ACK had to be retransmitted: the initial window is one segment
   *  (RFC 5681 §3.1, RFC 6928 §2). ssthresh is not touched: nothing was learned about capacity. */
  onSynLoss(): void;
  /** The MSS is known or changed (after the handshake). */
  setMss(mss: number): void;
  /**
   * SACK-based loss recovery (RFC 6675 §5 step 4, RFC 8985 §9.3) found a loss: reduce once,
   * cwnd = ssthresh, and stay in recovery until SND.UNA passes `sndMax` (the RecoveryPoint). During
   * it cwnd is not inflated; the sender keeps `pipe` below cwnd. Returns false (and changes
   * nothing) when the ACK does not cover the previous RecoveryPoint, so one loss event reduces
   * the window once (RFC 6675 §5 "MUST NOT enter loss recovery", RFC 6582 §3.2 step 2).
   */
  enterRecovery(ack: number, flight: number, sndMax: number, now: number): boolean;
  /** A loss repaired without a recovery episode (a tail loss probe found one, RFC 8985 §7.4.2):
   *  the window is reduced as for a fast recovery that ended at once. */
  onRepairedLoss(flight: number, now: number): void;
  /** Data is sent after an idle period longer than the RTO: cwnd = min(cwnd, IW) (RFC 5681 §4.1). */
  onIdleRestart(now: number): void;
}

/** Makes the congestion controller of a new connection (TcpConfig.congestionControl). */
export type CongestionFactory = (mss: number) => CongestionControl;

export interface NewRenoOptions {
  /** Initial ssthresh in bytes. RFC 5681 §3.1: "arbitrarily high" (the default); a finite value
   *  makes slow start end early (handy in simulations that want to watch congestion avoidance). */
  initialSsthresh?: number;
}

/** ssthresh before any loss: larger than any window (RFC 5681 §3.1). */
export const INFINITE_SSTHRESH = 0x7fffffff;

export class NewReno implements CongestionControl {
  get name(): string {
    return 'newreno';
  }
  cwnd: number;
  ssthresh: number;
  inRecovery = false;
  /** RFC 6582 "recover", as the sequence number just past the highest byte sent when recovery
   *  (or a timeout) began: a full ACK is one with ack >= recover. */
  protected recover = 0;
  protected recoverValid = false;
  /** The current recovery was entered by SACK loss detection (no inflation, no partial-ACK deflation). */
  private sackRecovery = false;
  protected mss: number;
  /** Bytes acknowledged in congestion avoidance since cwnd last grew (RFC 3465 §2.1). */
  private bytesAcked = 0;

  constructor(mss: number, opts: NewRenoOptions = {}) {
    this.mss = mss;
    this.cwnd = initialWindow(mss);
    this.ssthresh = opts.initialSsthresh ?? INFINITE_SSTHRESH;
  }

  setMss(mss: number): void {
    const wasInitial = this.cwnd === initialWindow(this.mss);
    this.mss = mss;
    if (wasInitial) this.cwnd = initialWindow(mss);
  }

  onSynLoss(): void {
    this.cwnd = this.mss;
  }

  onAck(acked: number, ack: number, flight: number, now = 0, rtt?: number): 'none' | 'partial' | 'exit' {
    if (this.inRecovery) {
      if (this.sackRecovery) {
        // RFC 6675 §5: cwnd stays at ssthresh until the RecoveryPoint is acknowledged; what may be
        // sent is cwnd - pipe, counted by the sender's scoreboard.
        if (!seqGeq(ack, this.recover)) return 'none';
        this.inRecovery = false;
        this.sackRecovery = false;
        this.cwnd = this.ssthresh;
        this.bytesAcked = 0;
        return 'exit';
      }
      if (seqGeq(ack, this.recover)) {
        // RFC 6582 §3.2 step 3, full ACK: deflate the window to
        // min(ssthresh, max(FlightSize, SMSS) + SMSS), FlightSize being what is still outstanding.
        this.inRecovery = false;
        this.cwnd = Math.min(this.ssthresh, Math.max(flight - acked, this.mss) + this.mss);
        this.bytesAcked = 0;
        return 'exit';
      }
      // RFC 6582 §3.2 step 3, partial ACK: deflate by the amount acked, add back one MSS if at
      // least one MSS was acked, and retransmit the next unacknowledged segment.
      this.cwnd = Math.max(this.cwnd - acked + (acked >= this.mss ? this.mss : 0), this.mss);
      return 'partial';
    }
    let left = acked;
    if (this.cwnd < this.ssthresh) {
      // Slow start (RFC 5681 §3.1) with byte counting (RFC 3465): cwnd grows by the bytes acked,
      // so it doubles every round trip. There is no per-ACK limit L: a receiver that coalesces
      // (GRO/LRO, or this stack's one ACK per batch of packets) sends one "stretch ACK" for many
      // segments, and counting only 2*SMSS of it would turn slow start into linear growth (Linux
      // makes the same choice). Growth stops at ssthresh; the rest counts toward avoidance.
      const grow = Math.min(left, this.ssthresh - this.cwnd);
      this.cwnd += grow;
      left -= grow;
    }
    if (left > 0 && this.cwnd >= this.ssthresh) this.congestionAvoidance(left, now, rtt);
    return 'none';
  }

  /** Growth once cwnd >= ssthresh, for `acked` bytes newly acknowledged. */
  protected congestionAvoidance(acked: number, _now: number, _rtt: number | undefined): void {
    // Congestion avoidance (RFC 5681 §3.1, RFC 3465 §2.1): one SMSS per cwnd's worth of bytes
    // acknowledged, i.e. one SMSS per round trip.
    this.bytesAcked += acked;
    while (this.bytesAcked >= this.cwnd) {
      this.bytesAcked -= this.cwnd;
      this.cwnd += this.mss;
    }
  }

  /** ssthresh after a loss when `flight` bytes were outstanding: RFC 5681 eq. (4). Called once per
   *  loss event (fast retransmit, SACK recovery, a first timeout), before cwnd changes. */
  protected ssthreshAfterLoss(flight: number, _now: number): number {
    return Math.max(Math.floor(flight / 2), 2 * this.mss);
  }

  enterRecovery(ack: number, flight: number, sndMax: number, now: number): boolean {
    if (this.inRecovery) return false;
    if (this.recoverValid && !seqGeq(ack, this.recover)) return false;
    // FlightSize (RFC 5681 eq. 4), but never more than cwnd: with SACK, SND.MAX - SND.UNA also
    // counts data the peer holds (SACKed during a long recovery), and reducing "from" more than
    // the window we actually had would raise it.
    this.ssthresh = this.ssthreshAfterLoss(Math.min(flight, this.cwnd), now);
    this.cwnd = this.ssthresh;
    this.bytesAcked = 0;
    this.recover = sndMax;
    this.recoverValid = true;
    this.inRecovery = true;
    this.sackRecovery = true;
    return true;
  }

  onRepairedLoss(flight: number, now: number): void {
    if (this.inRecovery) return;
    this.ssthresh = this.ssthreshAfterLoss(Math.min(flight, this.cwnd), now);
    this.cwnd = Math.min(this.cwnd, this.ssthresh);
    this.bytesAcked = 0;
  }

  onIdleRestart(_now: number): void {
    // RFC 5681 §4.1: RW = min(IW, cwnd); the ACK clock is gone, so no line-rate burst of a stale cwnd.
    this.cwnd = Math.min(this.cwnd, initialWindow(this.mss));
  }

  onDupAck(dupAcks: number, ack: number, flight: number, sndMax: number): 'none' | 'retransmit' {
    if (this.inRecovery) {
      // RFC 5681 §3.2 step 4: each further duplicate means a segment has left the network.
      this.cwnd += this.mss;
      return 'none';
    }
    if (dupAcks !== 3) return 'none';
    // RFC 6582 §3.2 step 2: start a new recovery only if the ACK covers more than "recover", so
    // duplicates caused by our own retransmissions (after a timeout, or of a window already being
    // recovered) do not halve cwnd a second time for the same loss event.
    if (this.recoverValid && !seqGeq(ack, this.recover)) return 'none';
    // RFC 5681 §3.2 steps 2-3: ssthresh = max(FlightSize / 2, 2*SMSS) (eq. 4); cwnd = ssthresh + 3*SMSS.
    this.ssthresh = this.ssthreshAfterLoss(flight, 0);
    this.cwnd = this.ssthresh + 3 * this.mss;
    this.bytesAcked = 0;
    this.recover = sndMax;
    this.recoverValid = true;
    this.inRecovery = true;
    return 'retransmit';
  }

  onRto(flight: number, sndMax: number, repeated: boolean): void {
    // RFC 5681 §3.1: ssthresh = max(FlightSize / 2, 2*SMSS) on the first timeout for a segment;
    // "held constant" when the same segment times out again. cwnd = LW = 1 SMSS.
    if (!repeated) this.ssthresh = this.ssthreshAfterLoss(flight, 0);
    this.cwnd = this.mss;
    this.bytesAcked = 0;
    this.inRecovery = false;
    this.sackRecovery = false;
    this.recover = sndMax; // RFC 6582 §3.2 step 4 (after a timeout, recover = highest sent)
    this.recoverValid = true;
  }
}

/** RFC 6928 §2: IW = min(10*MSS, max(2*MSS, 14600)). */
export function initialWindow(mss: number): number {
  return Math.min(10 * mss, Math.max(2 * mss, 14600));
}

/** The default algorithm. */
export const newReno: CongestionFactory = (mss) => new NewReno(mss);
