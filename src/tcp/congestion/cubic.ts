/**
 * CUBIC congestion control (RFC 9438), Linux's default since 2.6.19 and ours.
 *
 * After a loss CUBIC does not climb back linearly like Reno: the window follows a cubic curve in
 * the time t since the current congestion-avoidance epoch began,
 *
 *     W_cubic(t) = C * (t - K)^3 + W_max            (RFC 9438 eq. 1; segments, seconds)
 *     K = cbrt((W_max - cwnd_epoch) / C)              (eq. 2)
 *
 *   cwnd                         W_max                      convex: probing
 *    ^               ______________________________________/   for more
 *    |    concave: /   plateau around the last loss point
 *    |   back up  /
 *    |  fast     /
 *    | ---------/ <- cwnd_epoch = β_cubic * W_max
 *    +--------------------------------------------------------------> t
 *              0            K
 *
 * so it returns quickly to the window where the last loss happened, waits there, then probes.
 * The multiplicative decrease is β_cubic = 0.7 (§4.6), fast convergence (§4.7) releases bandwidth
 * to newer flows, and in the "Reno-friendly" region (§4.3) it is never slower than an AIMD flow
 * with the same β would be (W_est, growing α_cubic segments per RTT).
 *
 * Everything else — slow start, fast retransmit and recovery with or without SACK, the timeout
 * response — is NewReno's machinery (src/tcp/congestion.ts), with β_cubic instead of 1/2.
 * Internally windows are in segments (floating point), as in the RFC; `cwnd` stays in bytes.
 */
import type { CongestionFactory, NewRenoOptions } from '../congestion.js';
import { NewReno } from '../congestion.js';

/** RFC 9438 §5: C = 0.4 (segments / s^3). */
export const CUBIC_C = 0.4;
/** RFC 9438 §4.6: multiplicative decrease factor. */
export const CUBIC_BETA = 0.7;
/** RFC 9438 §4.3: AIMD increase that matches Reno's average rate with β_cubic: 3(1-β)/(1+β). */
export const CUBIC_ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);

/** W_cubic(t), RFC 9438 eq. (1): segments at `t` seconds into the epoch. */
export function wCubic(t: number, k: number, wMax: number): number {
  return CUBIC_C * (t - k) ** 3 + wMax;
}

/** K, RFC 9438 eq. (2): seconds from the start of the epoch until W_cubic is back at W_max. */
export function cubicK(wMax: number, cwndEpoch: number): number {
  return Math.cbrt(Math.max(0, wMax - cwndEpoch) / CUBIC_C);
}

export interface CubicOptions extends NewRenoOptions {
  /** RFC 9438 §4.7 (default on, as in Linux). */
  fastConvergence?: boolean;
}

export class Cubic extends NewReno {
  override get name(): string {
    return 'cubic';
  }
  /** W_max in segments: the window just before the last reduction (0 = no loss yet). */
  wMax = 0;
  /** K in seconds for the current epoch. */
  k = 0;
  /** Start of the current congestion-avoidance epoch (ms), undefined until the first CA ACK. */
  epochStart: number | undefined;
  /** W_est in segments (RFC 9438 §4.3). */
  wEst = 0;
  readonly #fastConvergence: boolean;
  /** The last reduction was a timeout: the next epoch starts with K = 0 and W_max = cwnd (§4.8). */
  #afterRto = false;
  /** cwnd with its fractional part (bytes); `cwnd` is the whole-byte view the sender uses. */
  #exact: number;

  constructor(mss: number, opts: CubicOptions = {}) {
    super(mss, opts);
    this.#fastConvergence = opts.fastConvergence ?? true;
    this.#exact = this.cwnd;
  }

  protected override ssthreshAfterLoss(flight: number, _now: number): number {
    // §4.6 computes the reduction from flight_size (the note there: cwnd may be used only with
    // measures that keep cwnd from growing while the flight is smaller; we use the flight).
    const w = flight / this.mss;
    // §4.7 fast convergence: a loss before reaching the previous W_max means competition; give way.
    this.wMax = this.#fastConvergence && w < this.wMax ? (w * (1 + CUBIC_BETA)) / 2 : w;
    this.epochStart = undefined;
    return Math.max(Math.floor(flight * CUBIC_BETA), 2 * this.mss);
  }

  override onRto(flight: number, sndMax: number, repeated: boolean): void {
    super.onRto(flight, sndMax, repeated);
    this.#afterRto = true;
    this.epochStart = undefined;
  }

  override onIdleRestart(now: number): void {
    super.onIdleRestart(now);
    // t must not count the idle time (RFC 9438 §5.8, Linux shifts its epoch the same way): start
    // a fresh epoch from the current window on the next ACK, keeping W_max.
    this.epochStart = undefined;
  }

  protected override congestionAvoidance(acked: number, now: number, rtt: number | undefined): void {
    const mss = this.mss;
    if (Math.floor(this.#exact) !== this.cwnd) this.#exact = this.cwnd; // changed by a reduction
    const cwnd = this.#exact / mss;
    if (this.epochStart === undefined) {
      // A new epoch (§4.2): t counts from here, cwnd_epoch is the window now.
      this.epochStart = now;
      if (this.#afterRto || this.wMax <= cwnd) {
        // §4.8 after a timeout, or no loss point above us: W_max = cwnd, K = 0 (pure convex probing).
        this.wMax = cwnd;
        this.k = 0;
      } else {
        this.k = cubicK(this.wMax, cwnd);
      }
      this.#afterRto = false;
      this.wEst = cwnd;
    }
    const segs = acked / mss;
    const t = (now - this.epochStart) / 1000;
    // §4.3: W_est grows α_cubic segments per RTT (α/cwnd per acked segment); 1 once past W_max.
    this.wEst += ((this.wEst >= this.wMax ? 1 : CUBIC_ALPHA) * segs) / cwnd;
    let next: number;
    if (wCubic(t, this.k, this.wMax) < this.wEst) {
      next = this.wEst; // §4.3 Reno-friendly region
    } else {
      // §4.4 / §4.5: aim at W_cubic one RTT ahead, between cwnd and 1.5 cwnd, and close
      // (target - cwnd) / cwnd of the gap per acknowledged segment.
      const target = Math.min(Math.max(wCubic(t + (rtt ?? 0) / 1000, this.k, this.wMax), cwnd), 1.5 * cwnd);
      next = cwnd + ((target - cwnd) / cwnd) * segs;
    }
    this.#exact = Math.max(this.#exact, next * mss);
    this.cwnd = Math.floor(this.#exact);
  }
}

export const cubic: CongestionFactory = (mss) => new Cubic(mss);
