/**
 * The timestamps option (RFC 7323 §3-§5) for one connection: our TSval clock, TS.Recent (the
 * peer's clock as we last accepted it), PAWS (protection against wrapped sequence numbers, §5)
 * and RTT measurement from the echoed value (§4).
 *
 *   our segment:   <TS val = our clock + offset, ecr = TS.Recent>
 *   peer's ACK:    <TS val = its clock,          ecr = one of our TSvals>  -> RTT = our clock - ecr
 *
 * Our clock ticks once per millisecond (RFC 7323 §5.4 asks for 1 ms to 1 s; Linux uses 1 ms).
 * Each connection adds its own offset, a keyed hash of its 4-tuple (`IsnGenerator.tsOffset`,
 * RFC 7323 §5.4 and §7.1), so a TSval reveals neither the host's uptime nor the clock of another
 * connection. Because the offset depends only on the 4-tuple, a later incarnation of the same
 * 4-tuple continues the same clock, which is what lets a SYN with a newer timestamp reopen a
 * connection in TIME-WAIT (RFC 6191).
 *
 * Timestamps are 32-bit values on a circle like sequence numbers (§5.2: "TS.Recent ... compared
 * using 32-bit modular arithmetic"), so the comparisons go through seq.ts.
 *
 * Sans-I/O: `now` (ms) is passed in.
 */
import { seqGeq, seqLeq, seqSub } from './seq.js';

/** RFC 7323 §5.5: TS.Recent is invalid after 24 days without a segment from the peer. */
export const PAWS_IDLE_LIMIT_MS = 24 * 24 * 3600 * 1000;

/** The largest RTT we believe from an echoed timestamp: anything longer is a bogus echo (a peer that
 *  echoes garbage must not poison the estimator). RFC 7323 §4.1 allows ignoring such values; the
 *  retransmission timer's own ceiling (120 s) is a natural bound. */
export const MAX_TS_RTT_MS = 120_000;

/** Bytes the option takes in every segment once agreed (NOP NOP kind len TSval TSecr): they come out
 *  of the MSS (RFC 6691 §2). */
export const TS_OPTION_LEN = 12;

/** How many ticks older than TS.Recent a timestamp may be and still pass PAWS (Linux's TCP_PAWS_WINDOW). */
export const PAWS_WINDOW = 1;

export class Timestamps {
  /** Both SYNs carried the option (RFC 7323 §3.2); only then is any of this used. */
  enabled = false;
  /** The peer's most recent accepted TSval (RFC 7323 §4.3), valid once `hasRecent`. */
  tsRecent = 0;
  hasRecent = false;
  /** When TS.Recent was last set (for the 24-day rule, §5.5). */
  tsRecentAt = 0;
  /** RCV.NXT carried by the last ACK we sent ("Last.ACK.sent", §4.3). */
  lastAckSent = 0;

  /** @param offset this connection's clock offset (a keyed hash of its 4-tuple). */
  constructor(readonly offset: number) {}

  /** TSval for a segment sent at `now`. */
  value(now: number): number {
    return (Math.floor(now) + this.offset) >>> 0;
  }

  /** The TSecr to send: TS.Recent (0 before the peer's first timestamp, e.g. in our SYN, §3.2). */
  echo(): number {
    return this.hasRecent ? this.tsRecent : 0;
  }

  /** The peer's SYN (or SYN-ACK) carried TSval `tsVal`: it starts TS.Recent (§3.2, §4.3). */
  onSyn(tsVal: number, now: number): void {
    this.tsRecent = tsVal >>> 0;
    this.hasRecent = true;
    this.tsRecentAt = now;
  }

  /**
   * RFC 7323 §5.3 R1 (PAWS): a segment whose TSval is older than TS.Recent is an old duplicate —
   * unless TS.Recent itself is stale (no segment for 24 days, §5.5), in which case it is not
   * trusted. RST segments are exempt (§5.3: "acceptable regardless of their timestamp"); the
   * caller does not ask for them.
   */
  isOld(tsVal: number, now: number): boolean {
    if (!this.hasRecent) return false;
    if (now - this.tsRecentAt > PAWS_IDLE_LIMIT_MS) return false;
    // Linux tolerates one tick (TCP_PAWS_WINDOW = 1): segments sent in the same millisecond as the
    // one that set TS.Recent may arrive in either order.
    return seqSub(this.tsRecent, tsVal >>> 0) > PAWS_WINDOW;
  }

  /**
   * RFC 7323 §4.3 (2), for a segment that passed PAWS and the sequence check: TS.Recent takes its
   * TSval if it is not older and the segment starts at or before Last.ACK.sent — so a delayed ACK
   * echoes the earliest unacknowledged segment's time, and out-of-order segments beyond the hole
   * never move TS.Recent forward.
   */
  update(seq: number, tsVal: number, now: number): void {
    if (!seqLeq(seq, this.lastAckSent)) return;
    if (this.hasRecent && !seqGeq(tsVal >>> 0, this.tsRecent)) return;
    this.tsRecent = tsVal >>> 0;
    this.hasRecent = true;
    this.tsRecentAt = now;
  }

  /** We are about to send an ACK for everything below `rcvNxt` (§4.3 "Last.ACK.sent"). */
  ackSent(rcvNxt: number): void {
    this.lastAckSent = rcvNxt >>> 0;
  }

  /**
   * RTT in ms from the echo of an ACK that acknowledges new data (§4.1, with RFC 6298's
   * estimator), or undefined if the echo is not one of our recent clock values (zero, from the
   * future, or older than MAX_TS_RTT_MS).
   */
  rtt(tsEcr: number, now: number): number | undefined {
    const d = seqSub(this.value(now), tsEcr >>> 0);
    if (d < 0 || d > MAX_TS_RTT_MS) return undefined;
    return d;
  }

  /**
   * RFC 6191 §2: a SYN for a 4-tuple in TIME-WAIT may open a new incarnation when its timestamp
   * is newer than the old connection's TS.Recent (the peer's clock moved on), whatever its ISN.
   * Returns undefined when timestamps cannot decide (not in use on the old connection, or the
   * SYN has none), so the caller falls back to RFC 9293's ISN rule.
   */
  synIsNewer(tsVal: number | undefined): boolean | undefined {
    if (!this.enabled || !this.hasRecent || tsVal === undefined) return undefined;
    return seqSub(tsVal >>> 0, this.tsRecent) > 0;
  }
}
