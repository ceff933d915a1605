/**
 * Retransmission timeout estimator (RFC 6298).
 *
 * Keeps the smoothed round-trip time (SRTT) and its variation (RTTVAR) from RTT
 * samples and turns them into the retransmission timeout (RTO), plus the
 * exponential backoff applied while retransmissions go unanswered.
 *
 * Karn's algorithm (RFC 6298 §3): an RTT must never be sampled from a segment that
 * was retransmitted, because its ACK could belong to either transmission. This
 * class cannot know that; the connection only calls `sample()` for segments sent
 * exactly once (or uses the timestamp option's echo, RFC 7323 §4, which is
 * unambiguous). The backoff is kept until such a valid sample arrives (§5.5 and
 * Karn's "keep the backed-off RTO until an ACK for a new segment").
 *
 * Pure arithmetic: no clock, no timers. The connection measures the RTT with the
 * `now` it is given and arms its own deadline at `now + rto`.
 */

export interface RtoOptions {
  /**
   * Lower bound for the RTO in ms. RFC 6298 §2.4 says 1 s, but notes it is
   * conservative; Linux uses 200 ms (TCP_RTO_MIN) and so do we by default, so
   * that a loss on a LAN or loopback path does not stall a transfer for a second.
   */
  minRto?: number;
  /** Upper bound in ms. RFC 6298 §2.5 allows any maximum of at least 60 s; Linux uses 120 s (TCP_RTO_MAX). */
  maxRto?: number;
  /** RTO before any RTT sample, in ms: 1 s (RFC 6298 §2.1). */
  initialRto?: number;
  /** Clock granularity G in ms (RFC 6298 §2): our clock counts milliseconds. */
  granularity?: number;
}

const ALPHA = 1 / 8; // gain for SRTT (RFC 6298 §2.3)
const BETA = 1 / 4; // gain for RTTVAR (RFC 6298 §2.3)
const K = 4; // RTTVAR multiplier (RFC 6298 §2)

export class RtoEstimator {
  readonly minRto: number;
  readonly maxRto: number;
  readonly initialRto: number;
  readonly granularity: number;

  #srtt: number | undefined;
  #rttvar: number | undefined;
  /** RTO from the estimate alone (before backoff), already clamped to [minRto, maxRto]. */
  #baseRto: number;
  /** How many times the timer has been backed off since the last valid sample. */
  #backoffs = 0;

  constructor(opts: RtoOptions = {}) {
    this.minRto = opts.minRto ?? 200;
    this.maxRto = opts.maxRto ?? 120_000;
    this.initialRto = opts.initialRto ?? 1000;
    this.granularity = opts.granularity ?? 1;
    if (!(this.minRto > 0 && this.minRto <= this.maxRto)) {
      throw new RangeError(`RtoEstimator: need 0 < minRto <= maxRto (got ${this.minRto}, ${this.maxRto})`);
    }
    if (!(this.initialRto > 0) || !(this.granularity > 0)) {
      throw new RangeError('RtoEstimator: initialRto and granularity must be positive');
    }
    this.#baseRto = this.#clamp(this.initialRto);
  }

  /** Current RTO in ms, including backoff, within [minRto, maxRto]. */
  get rto(): number {
    // 2^backoffs stays small: backoff() stops counting once maxRto is reached.
    return Math.min(this.#baseRto * 2 ** this.#backoffs, this.maxRto);
  }

  /** Smoothed RTT in ms, undefined until the first sample. */
  get srtt(): number | undefined {
    return this.#srtt;
  }

  /** RTT variation in ms, undefined until the first sample. */
  get rttvar(): number | undefined {
    return this.#rttvar;
  }

  /** Times the RTO has been doubled since the last valid sample. */
  get backoffCount(): number {
    return this.#backoffs;
  }

  /** Feed one RTT measurement R in ms (Karn's rule applies: see the file comment). */
  sample(rttMs: number): void {
    if (!Number.isFinite(rttMs) || rttMs < 0) return; // a caller bug must not poison the estimate
    if (this.#srtt === undefined || this.#rttvar === undefined) {
      // RFC 6298 §2.2: the first measurement.
      this.#srtt = rttMs;
      this.#rttvar = rttMs / 2;
    } else {
      // RFC 6298 §2.3: RTTVAR is updated first, with the *old* SRTT.
      this.#rttvar = (1 - BETA) * this.#rttvar + BETA * Math.abs(this.#srtt - rttMs);
      this.#srtt = (1 - ALPHA) * this.#srtt + ALPHA * rttMs;
    }
    // RTO = SRTT + max(G, K*RTTVAR), then §2.4/§2.5 bounds.
    this.#baseRto = this.#clamp(this.#srtt + Math.max(this.granularity, K * this.#rttvar));
    this.#backoffs = 0;
  }

  /** RFC 6298 §5.5: the retransmission timer expired, double the RTO (up to maxRto). */
  backoff(): void {
    if (this.rto < this.maxRto) this.#backoffs++;
  }

  /** Drop the backoff and return to the estimate (e.g. when new data is ACKed). */
  resetBackoff(): void {
    this.#backoffs = 0;
  }

  /**
   * RFC 6298 §5.7: the timer expired while awaiting the ACK of a SYN. If no RTT has been
   * measured (Karn's rule forbids timing the retransmitted SYN), data transmission begins
   * with an RTO of at least 3 s.
   */
  afterSynLoss(): void {
    this.#backoffs = 0;
    if (this.#srtt === undefined) this.#baseRto = this.#clamp(Math.max(this.#baseRto, 3000));
  }

  #clamp(ms: number): number {
    return Math.min(Math.max(ms, this.minRto), this.maxRto);
  }
}
