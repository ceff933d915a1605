/**
 * RACK-TLP (RFC 8985): loss detection by time rather than by counting duplicate ACKs.
 *
 * RACK ("recent acknowledgment"): when a segment sent at time T is delivered, every segment
 * sent sufficiently before T — more than a reordering window earlier, plus the RTT — that is still
 * unacknowledged is deemed lost. It works the same for original segments and retransmissions, so
 * a lost retransmission is found without waiting for a timeout; and it tolerates reordering by
 * adapting the window (RFC 8985 §6.2 step 4).
 *
 * TLP ("tail loss probe"): when the last segments of a flight are lost there is nothing left to
 * trigger RACK, and the sender would wait for the RTO (200 ms or more). Instead, after about two
 * RTTs of silence it sends one probe — new data if any, else the last segment again — whose ACK
 * (with SACK) lets RACK find the losses (RFC 8985 §7).
 *
 * This module keeps RACK's and TLP's state and reads the sender's scoreboard (sack.ts); the
 * connection arms the timers it returns. Sans-I/O: `now` in ms.
 */
import type { Scoreboard, SentRecord } from './sack.js';
import { seqGeq, seqGt, seqLeq, seqLt } from './seq.js';

/** RFC 8985 §7.2: the worst-case delayed-ACK time added to a PTO when only one segment is in flight
 *  (Linux's TCP_DELACK_MAX, 200 ms). */
export const WC_DEL_ACK_MS = 200;
/** Added to 2·SRTT when more than one segment is in flight (Linux's TCP_TIMEOUT_MIN, two ticks). */
export const PTO_MARGIN_MS = 2;
/** RFC 8985 §6.2 step 4: reo_wnd_mult stays raised for this many loss recoveries after a D-SACK. */
const REO_WND_PERSIST = 16;

export class Rack {
  /** Transmission time and end of the most recently sent segment that has been delivered. */
  xmitTs = -Infinity;
  endSeq = 0;
  /** Its SentRecord.xmitOrder. */
  xmitOrder = 0;
  /** RTT measured from that segment (ms). */
  rtt = 0;
  /** Smallest RTT seen (RFC 8985 uses a windowed minimum; the path's floor is what matters here). */
  minRtt = Infinity;
  /** Highest sequence number delivered (RACK.fack). */
  fack: number | undefined;
  reorderingSeen = false;
  #reoWndMult = 1;
  #reoWndPersist = 0;
  /** The D-SACK round (RFC 8985 §6.2 step 4): one increase of the multiplier per round trip. */
  #dsackRoundEnd: number | undefined;

  // --- TLP (RFC 8985 §7) ---
  /** SND.NXT after the probe of the current TLP episode (undefined: no episode). */
  tlpEndSeq: number | undefined;
  /** The probe was a retransmission (it can prove a loss, §7.4). */
  tlpIsRetrans = false;

  /**
   * RFC 8985 §6.2 step 2, RACK_update() for each segment this ACK delivered. `echoedAt`: when the
   * segment the peer's timestamp echo belongs to was sent (our clock), if timestamps are on — it
   * tells an ACK of the original transmission from one of the retransmission (step 2's ambiguity).
   */
  onDelivered(r: SentRecord, now: number, echoedAt?: number): void {
    const rtt = now - r.xmitTs;
    if (r.xmits > 1) {
      // Retransmitted: was this ACK for an earlier copy? Then its RTT would be too short.
      if (echoedAt !== undefined && echoedAt < r.xmitTs) return;
      if (rtt < this.minRtt) return;
    }
    if (rtt >= 0 && rtt < this.minRtt) this.minRtt = rtt;
    if (sentAfter(r.xmitTs, r.end, this.xmitTs, this.endSeq, r.xmitOrder, this.xmitOrder)) {
      this.rtt = Math.max(0, rtt);
      this.xmitTs = r.xmitTs;
      this.endSeq = r.end;
      this.xmitOrder = r.xmitOrder;
    }
    // §6.2 step 3: a never-retransmitted segment delivered below the highest delivered sequence
    // was reordered, not lost.
    if (this.fack === undefined || seqGt(r.end, this.fack)) this.fack = r.end;
    else if (r.xmits === 1 && seqGt(this.fack, r.end)) this.reorderingSeen = true;
  }

  /** §6.2 step 4: a D-SACK (a spurious retransmission, or reordering) widens the window, once
   *  per round trip, for the next REO_WND_PERSIST recoveries. `sndMax` marks the round's end: the
   *  round is over once SND.UNA has reached it ("SND.UNA >= RACK.dsack_round"). */
  onDsack(una: number, sndMax: number): void {
    if (this.#dsackRoundEnd !== undefined && seqLt(una, this.#dsackRoundEnd)) return;
    this.#dsackRoundEnd = sndMax;
    this.#reoWndMult++;
    this.#reoWndPersist = REO_WND_PERSIST;
  }

  /** A loss recovery ended: the raised multiplier decays after REO_WND_PERSIST of them. */
  onRecoveryEnd(): void {
    if (this.#reoWndPersist > 0 && --this.#reoWndPersist === 0) this.#reoWndMult = 1;
  }

  /**
   * §6.2 step 4, RACK.reo_wnd. Before any reordering is seen, Linux (and RFC 8985 §6.2, "DupThresh
   * ... may be combined") is aggressive: 0 during recovery, and 0 once DupThresh segments are
   * SACKed. Otherwise min_RTT/4 times the multiplier, at most SRTT.
   */
  reoWnd(inRecovery: boolean, sackedCount: number, srtt: number): number {
    if (!this.reorderingSeen && (inRecovery || sackedCount >= 3)) return 0;
    if (this.minRtt === Infinity) return 0;
    return Math.min((this.minRtt / 4) * this.#reoWndMult, srtt);
  }

  /**
   * §6.2 step 5, RACK_detect_loss(): mark lost every outstanding record sent before the last
   * delivered one by more than RTT + reo_wnd. Returns the time (ms from now) after which the
   * next undecided one would be lost — the reordering timer — or 0 if none is pending.
   * Walks records oldest transmission first and stops at the first one sent after RACK.xmit_ts.
   */
  detectLoss(sb: Scoreboard, reoWnd: number, now: number): { lostBytes: number; timeout: number } {
    let lostBytes = 0;
    let timeout = 0;
    if (this.xmitTs === -Infinity) return { lostBytes, timeout };
    for (let r = sb.oldestSent; r !== undefined; r = r.next) {
      if (!sentAfter(this.xmitTs, this.endSeq, r.xmitTs, r.end, this.xmitOrder, r.xmitOrder)) break;
      if (r.lost && !r.retrans) continue; // already waiting for retransmission
      const remaining = r.xmitTs + this.rtt + reoWnd - now;
      if (remaining <= 0) lostBytes += sb.markLost(r);
      else timeout = Math.max(timeout, remaining);
    }
    return { lostBytes, timeout };
  }

  /**
   * §7.2 PTO: 2·SRTT, plus the worst-case delayed ACK when only one segment is in flight (else two
   * clock ticks, 2 ms, as Linux adds, so a tiny SRTT on a LAN does not probe at once), never later
   * than the RTO would fire. Without an RTT sample, 1 s (RFC 8985 §7.2).
   */
  probeTimeout(srtt: number | undefined, oneSegmentInFlight: boolean, rtoRemaining: number): number {
    let pto = srtt === undefined ? 1000 : 2 * srtt;
    pto += oneSegmentInFlight ? WC_DEL_ACK_MS : PTO_MARGIN_MS;
    return Math.max(1, Math.min(pto, rtoRemaining));
  }

  /** §7.3: a probe went out; SND.NXT after it is `endSeq`. */
  onProbeSent(endSeq: number, isRetrans: boolean): void {
    this.tlpEndSeq = endSeq;
    this.tlpIsRetrans = isRetrans;
  }

  /**
   * §7.4: an ACK during a TLP episode. Returns 'loss' when the probe repaired a loss (the caller
   * reduces cwnd, §7.4.2), 'none' otherwise; the episode ends once the probe is accounted for.
   */
  onAckForProbe(una: number, dsack: [number, number] | undefined): 'loss' | 'none' {
    if (this.tlpEndSeq === undefined) return 'none';
    if (this.tlpIsRetrans && dsack !== undefined && seqLeq(dsack[1], this.tlpEndSeq)) {
      // §7.4.1: the D-SACK says the original arrived too: nothing was lost.
      this.tlpEndSeq = undefined;
      return 'none';
    }
    if (seqGeq(una, this.tlpEndSeq)) {
      const repaired = this.tlpIsRetrans;
      this.tlpEndSeq = undefined;
      return repaired ? 'loss' : 'none';
    }
    return 'none';
  }
}

/**
 * RFC 8985 §6.2 RACK_sent_after(t1, seq1, t2, seq2): sent later in time, ties broken by sequence.
 * Our clock ticks in ms, so two transmissions often share a time; the transmission order (o1, o2:
 * SentRecord.xmitOrder) decides those first. Without it a retransmission sent in the same ms as
 * new data above it would count as sent before that data, and be deemed lost again at once when
 * the data is SACKed (Linux's µs timestamps make such ties rare).
 */
export function sentAfter(t1: number, seq1: number, t2: number, seq2: number, o1 = 0, o2 = 0): boolean {
  return t1 > t2 || (t1 === t2 && (o1 !== o2 ? o1 > o2 : seqGt(seq1, seq2)));
}
