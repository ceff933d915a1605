/**
 * 32-bit modular sequence-number arithmetic (RFC 9293 §3.4).
 *
 * TCP sequence numbers live on a circle of 2^32 values: after 0xffffffff comes 0.
 * "a < b" therefore means "b is less than half the circle ahead of a". Plain `<` on
 * raw numbers is wrong as soon as a connection crosses the wrap, so every TCP
 * comparison in this project goes through these helpers.
 *
 * All functions take and return uint32 numbers (0 .. 2^32-1); `seqSub` returns a
 * signed distance.
 */

export type Seq = number; // uint32

const HALF = 0x80000000; // 2^31

/** a + n on the circle; n may be negative. */
export function seqAdd(a: Seq, n: number): Seq {
  return (a + n) >>> 0;
}

/**
 * Signed distance a - b, in (-2^31, 2^31]. Positive when a is "after" b.
 * Two numbers exactly half the circle apart are ambiguous; we call that +2^31,
 * so seqSub(a, b) and seqSub(b, a) are then both 2^31 (RFC 1982 §3.2 leaves it
 * undefined too). TCP windows are < 2^30 (RFC 7323 §2.3), so it never matters.
 */
export function seqSub(a: Seq, b: Seq): number {
  const d = (a - b) | 0; // wrap to int32: [-2^31, 2^31)
  return d === -HALF ? HALF : d;
}

export function seqLt(a: Seq, b: Seq): boolean {
  return seqSub(a, b) < 0;
}

export function seqLeq(a: Seq, b: Seq): boolean {
  return seqSub(a, b) <= 0;
}

export function seqGt(a: Seq, b: Seq): boolean {
  return seqSub(a, b) > 0;
}

export function seqGeq(a: Seq, b: Seq): boolean {
  return seqSub(a, b) >= 0;
}

export function seqMax(a: Seq, b: Seq): Seq {
  return seqGeq(a, b) ? a : b;
}

export function seqMin(a: Seq, b: Seq): Seq {
  return seqLeq(a, b) ? a : b;
}

/**
 * lo <= x < hi on the circle (the half-open window used by RFC 9293 §3.4's
 * acceptability tests, e.g. RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND).
 * An empty range (lo == hi) contains nothing.
 */
export function seqInRange(x: Seq, lo: Seq, hi: Seq): boolean {
  // Measure both distances forward from lo; no sign ambiguity.
  return ((x - lo) >>> 0) < ((hi - lo) >>> 0);
}
