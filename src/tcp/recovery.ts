/**
 * SACK-based loss recovery for one connection: the scoreboard (sack.ts), RACK-TLP (rack.ts)
 * and their two timers, behind the few calls the sender makes. Used when both SYNs carried
 * SACK-permitted; without it the connection recovers with NewReno (RFC 6582).
 *
 *   ACK arrives ──▶ onAck: scoreboard (cumulative + SACK blocks, D-SACK), RACK update,
 *                   IsLost (RFC 6675, DupThresh) + RACK_detect_loss (RFC 8985 §6.2)
 *                   ──▶ "a loss": the sender enters recovery (cwnd = ssthresh, RFC 6675 §5)
 *   sender ───────▶ nextRetransmit(): lost holes first, then new data while pipe < cwnd
 *   reorder timer ▶ onReorderTimeout: RACK again, now that time has passed
 *   probe timer ──▶ the sender sends a tail loss probe (RFC 8985 §7.3)
 *
 * The two timers are deadlines in the connection's `Deadlines` (timers.ts): this module computes
 * them (absolute ms; Infinity = off). Sans-I/O: `now` in ms.
 */
import { Rack } from './rack.js';
import { Scoreboard, type SentRecord } from './sack.js';

export interface AckOutcome {
  /** Something is deemed lost (and waits for retransmission). */
  lossDetected: boolean;
  /** The first SACK block reported a duplicate (RFC 2883). */
  dsack: [number, number] | undefined;
  /** SACK blocks ignored as invalid. */
  invalid: number;
  /** Bytes newly SACKed. */
  newlySacked: number;
  /** A tail loss probe repaired a loss: reduce the window once (RFC 8985 §7.4.2). */
  probeRepairedLoss: boolean;
  /** RACK's reordering timer (RFC 8985 §6.3): when to look again, or Infinity. */
  reorderAt: number;
}

export class SackRecovery {
  readonly sb: Scoreboard;
  readonly rack = new Rack();
  /** The one outcome onAck fills in (it runs on every ACK: no garbage per ACK). */
  readonly #outcome: AckOutcome = { lossDetected: false, dsack: undefined, invalid: 0, newlySacked: 0, probeRepairedLoss: false, reorderAt: Infinity };

  constructor(mss: number, maxRecords = 4096) {
    this.sb = new Scoreboard(maxRecords, mss);
  }

  set mss(mss: number) {
    this.sb.mss = mss;
  }

  /** Bytes in the network (RFC 6675 SetPipe). */
  get pipe(): number {
    return this.sb.pipe;
  }

  /** `len` sequence numbers from `start` were (re)sent at `now`. */
  onSent(start: number, len: number, now: number): void {
    this.sb.onSend(start, len, now);
  }

  /**
   * An acceptable ACK: cumulative `una`, the peer's SACK blocks (unvalidated), `sndMax`.
   * `echoedAt`: our clock when the echoed timestamp was sent, if timestamps are on.
   * The outcome is valid until the next call (it is reused).
   */
  onAck(
    una: number,
    blocks: ReadonlyArray<readonly [number, number]> | undefined,
    sndMax: number,
    now: number,
    inRecovery: boolean,
    srtt: number,
    echoedAt?: number,
  ): AckOutcome {
    const res = this.sb.onAck(una, blocks, sndMax);
    const delivered = res.delivered;
    for (let i = 0; i < delivered.length; i++) this.rack.onDelivered(delivered[i]!, now, echoedAt);
    if (res.dsack) this.rack.onDsack(una, sndMax);
    const probe = this.rack.onAckForProbe(una, res.dsack);
    this.sb.markLostByDupThresh();
    const { timeout } = this.rack.detectLoss(this.sb, this.rack.reoWnd(inRecovery, this.sb.sackedSegments, srtt), now);
    const out = this.#outcome;
    out.reorderAt = timeout > 0 ? now + timeout : Infinity;
    out.lossDetected = this.sb.lostBytes > 0;
    out.dsack = res.dsack;
    out.invalid = res.invalid;
    out.newlySacked = res.newlySacked;
    out.probeRepairedLoss = probe === 'loss';
    return out;
  }

  /** The reordering timer fired: run RACK's loss detection again. Returns whether something is
   *  lost now, and the next reordering deadline. */
  onReorderTimeout(now: number, inRecovery: boolean, srtt: number): { lost: boolean; reorderAt: number } {
    const { timeout } = this.rack.detectLoss(this.sb, this.rack.reoWnd(inRecovery, this.sb.sackedSegments, srtt), now);
    return { lost: this.sb.lostBytes > 0, reorderAt: timeout > 0 ? now + timeout : Infinity };
  }

  /** RFC 6675 NextSeg rule (1): the next lost record to retransmit, if any. */
  nextRetransmit(): SentRecord | undefined {
    return this.sb.nextLost();
  }

  /** A retransmission timeout: every un-SACKed record is lost; a TLP episode ends. Returns true
   *  when the peer had reneged on its SACKs (they are forgotten, see Scoreboard.markAllLost). */
  onRto(): boolean {
    const reneged = this.sb.markAllLost();
    this.rack.tlpEndSeq = undefined;
    return reneged;
  }

  /**
   * RFC 8985 §7.2: the probe deadline after new data was sent or an ACK advanced SND.UNA — only
   * outside recovery, while nothing is SACKed ("unless ... segments have been SACKed (i.e.,
   * RACK.segs_sacked is not zero)": RACK's reordering timer covers that case, as Linux leaves
   * TCP_CA_Disorder to it), with data in flight and no probe outstanding (else Infinity). `rtoAt`:
   * when the retransmission timer would fire.
   */
  probeDeadline(now: number, srtt: number | undefined, flight: number, mss: number, inRecovery: boolean, rtoAt: number): number {
    if (inRecovery || this.sb.sackedCount > 0 || flight <= 0 || this.rack.tlpEndSeq !== undefined || rtoAt === Infinity) return Infinity;
    return now + this.rack.probeTimeout(srtt, flight <= mss, rtoAt - now);
  }

  clear(): void {
    this.sb.clear();
  }
}
