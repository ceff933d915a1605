/**
 * Seeded pseudo-random numbers for simulations and tests: the same seed gives the same
 * sequence on every run, so a failing simulation replays exactly. NOT for anything
 * security-related (ISNs use a keyed hash, see src/tcp).
 */

/**
 * mulberry32: a 32-bit state, one multiply-xorshift round per draw. Tiny, fast, and good
 * enough to drive fault injection. Returns numbers in [0, 1).
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
