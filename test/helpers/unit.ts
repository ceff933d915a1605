/** Small helpers the unit tests share. */

/** The value of a parse that must succeed (a `{ error }` result fails the test with its reason). */
export function ok<T extends object>(r: T): Exclude<T, { error: unknown }> {
  if ('error' in r) throw new Error(`unexpected error ${String(r.error)}`);
  return r as Exclude<T, { error: unknown }>;
}

/** Bytes from hex text; whitespace is ignored ("45 00 00 1c" or "4500001c"). */
export function hex(s: string): Uint8Array {
  return Uint8Array.from(s.replace(/\s+/g, '').match(/../g)!.map((b) => parseInt(b, 16)));
}

/** A uniformly drawn unsigned 32-bit number from `r` (a seeded random in [0, 1)). */
export function u32(r: () => number): number {
  return Math.floor(r() * 4294967296) >>> 0;
}
