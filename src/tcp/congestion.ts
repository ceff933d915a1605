/**
 * Congestion control behind a small interface, so that another algorithm (CUBIC, RFC 9438)
 * can replace NewReno without touching the connection.
 *
 * NewReno: RFC 5681 (slow start, congestion avoidance, fast retransmit / fast recovery)
 * with RFC 6582's partial-ACK handling, and RFC 6928's initial window of 10 segments.
 */
export interface CongestionControl {
  readonly name: string;
  /** Congestion window in bytes. */
  readonly cwnd: number;
  readonly ssthresh: number;
  readonly inRecovery: boolean;
  /** New data acknowledged. `flight` = bytes outstanding before this ACK. Returns 'partial' when a
   *  partial ACK in fast recovery asks for the next hole to be retransmitted. */
  onAck(acked: number, ack: number, flight: number, now: number): 'none' | 'partial' | 'exit';
  /** A duplicate ACK (RFC 5681 §2 definition). Returns 'retransmit' on the one that starts fast retransmit. */
  onDupAck(dupAcks: number, ack: number, flight: number, sndMax: number): 'none' | 'retransmit';
  /** The retransmission timer expired. */
  onRto(flight: number, sndMax: number): void;
  /** The MSS is known or changed (after the handshake). */
  setMss(mss: number): void;
}

import { seqGeq, seqGt } from './seq.js';

export class NewReno implements CongestionControl {
  readonly name = 'newreno';
  cwnd: number;
  ssthresh = 0x7fffffff; // RFC 5681 §3.1: "arbitrarily high" initially
  inRecovery = false;
  private recover = 0; // RFC 6582 "recover": highest sequence sent when recovery began
  private recoverValid = false;
  private mss: number;
  private bytesAcked = 0; // for byte-counted congestion avoidance (RFC 5681 §3.1, RFC 3465)

  constructor(mss: number) {
    this.mss = mss;
    this.cwnd = initialWindow(mss);
  }

  setMss(mss: number): void {
    const wasInitial = this.cwnd === initialWindow(this.mss);
    this.mss = mss;
    if (wasInitial) this.cwnd = initialWindow(mss);
  }

  onAck(acked: number, ack: number, flight: number): 'none' | 'partial' | 'exit' {
    if (this.inRecovery) {
      if (seqGeq(ack, this.recover)) {
        // RFC 6582 §3.2 step 3 (full ACK): deflate the window.
        this.inRecovery = false;
        this.cwnd = Math.max(Math.min(this.ssthresh, flight - acked + this.mss), this.mss);
        return 'exit';
      }
      // Partial ACK (RFC 6582 §3.2 step 3): deflate by the amount acked, add back one MSS
      // if at least one MSS was acked, and retransmit the next unacknowledged segment.
      this.cwnd = Math.max(this.cwnd - acked + (acked >= this.mss ? this.mss : 0), this.mss);
      return 'partial';
    }
    if (this.cwnd < this.ssthresh) {
      // Slow start (RFC 5681 §3.1, with RFC 3465 L = 2*SMSS).
      this.cwnd += Math.min(acked, 2 * this.mss);
    } else {
      // Congestion avoidance: about one MSS per RTT, counted in bytes.
      this.bytesAcked += acked;
      if (this.bytesAcked >= this.cwnd) {
        this.bytesAcked -= this.cwnd;
        this.cwnd += this.mss;
      }
    }
    return 'none';
  }

  onDupAck(dupAcks: number, ack: number, flight: number, sndMax: number): 'none' | 'retransmit' {
    if (this.inRecovery) {
      this.cwnd += this.mss; // RFC 5681 §3.2 step 4: inflate for each further duplicate
      return 'none';
    }
    if (dupAcks !== 3) return 'none';
    // RFC 6582 §3.2 step 2: only start a new recovery if this ACK covers more than "recover",
    // so a loss in the retransmitted window doesn't halve cwnd twice.
    if (this.recoverValid && !seqGt(ack, this.recover)) return 'none';
    this.ssthresh = Math.max(Math.floor(flight / 2), 2 * this.mss); // RFC 5681 eq. (4)
    this.cwnd = this.ssthresh + 3 * this.mss;
    this.recover = sndMax;
    this.recoverValid = true;
    this.inRecovery = true;
    return 'retransmit';
  }

  onRto(flight: number, sndMax: number): void {
    // RFC 5681 §3.1 eq. (4) and "LW = 1 SMSS".
    this.ssthresh = Math.max(Math.floor(flight / 2), 2 * this.mss);
    this.cwnd = this.mss;
    this.bytesAcked = 0;
    this.inRecovery = false;
    this.recover = sndMax; // RFC 6582 §3.2 step 4
    this.recoverValid = true;
  }
}

/** RFC 6928: min(10*MSS, max(2*MSS, 14600)). */
export function initialWindow(mss: number): number {
  return Math.min(10 * mss, Math.max(2 * mss, 14600));
}
