/**
 * Limits on the replies TCP sends to segments it will not accept, so that a flood of bad
 * segments does not become a flood of answers, and so that the answers leak nothing.
 *
 * - Per connection (Linux tcp_oow_rate_limited, sysctl tcp_invalid_ratelimit = 500 ms): the
 *   duplicate ACK that answers an out-of-window segment or an ACK of data never sent, and the
 *   RFC 5961 challenge ACK, go out at most once per interval on one connection.
 * - Per stack, challenge ACKs only (RFC 5961 §7 asks for a limit): a budget per second whose
 *   exact size is drawn at random each second. A fixed count is a side channel: an off-path
 *   attacker fills it and counts the challenge ACKs it gets back to learn whether its spoofed
 *   segments hit a live connection's window (CVE-2016-5696, "Off-Path TCP Exploits",
 *   USENIX Security 2016; RFC 5961 §10 warns of it). Linux since 4.7 draws the budget from
 *   [limit/2, 3·limit/2] each second, and so do we.
 *
 * Sans-I/O: times are the `now` passed in; randomness comes from the caller.
 */

/** Linux's sysctl_tcp_invalid_ratelimit default (ms). */
export const INVALID_REPLY_INTERVAL_MS = 500;

/** Linux's tcp_challenge_ack_limit before 6.0 (challenge ACKs per second, before randomisation). */
export const CHALLENGE_ACKS_PER_SECOND = 1000;

/**
 * Whether a connection may answer an invalid segment now, given when it last did
 * (`lastReplyAt`, -Infinity if never). The caller records `now` when it does answer.
 * Like Linux, an elapsed time below zero (a clock step back) does not limit.
 */
export function invalidReplyAllowed(lastReplyAt: number, now: number, intervalMs = INVALID_REPLY_INTERVAL_MS): boolean {
  const elapsed = now - lastReplyAt;
  return !(elapsed >= 0 && elapsed < intervalMs);
}

/**
 * Linux applies the per-connection limit only to segments that could be part of an ACK loop
 * between two confused endpoints: a segment carrying data (and no SYN) is always answered,
 * since its sender needs the duplicate ACK to recover (RFC 5681 §4.2).
 */
export function invalidReplyLimitApplies(payloadLength: number, syn: boolean): boolean {
  return payloadLength === 0 || syn;
}

/** The stack-wide challenge-ACK budget: a random count in [limit/2, 3·limit/2] per second. */
export class ChallengeAckBudget {
  private second = Number.NaN;
  private left = 0;

  /** @param random uniform in [0, 1): the CSPRNG in production, seeded in simulations. */
  constructor(
    private readonly limitPerSecond: number,
    private readonly random: () => number,
  ) {}

  /** Spend one challenge ACK if this second's budget has one left. */
  take(now: number): boolean {
    const second = Math.floor(now / 1000);
    if (second !== this.second) {
      this.second = second;
      const half = (this.limitPerSecond + 1) >>> 1;
      this.left = half + Math.floor(this.random() * (this.limitPerSecond + 1));
    }
    if (this.left <= 0) return false;
    this.left--;
    return true;
  }
}
