import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/runtime/random.js';
import { IsnGenerator, siphash24 } from '../../src/tcp/isn.js';
import { seqSub } from '../../src/tcp/seq.js';
import { u32 } from '../helpers/unit.js';

const mulberry32 = seededRandom;
const u16 = (r: () => number) => Math.floor(r() * 65536);

function popcount(x: number): number {
  let n = 0;
  for (x >>>= 0; x !== 0; x = (x & (x - 1)) >>> 0) n++;
  return n;
}

/**
 * The reference SipHash-2-4 vectors (vectors.h / siphash24.c of the SipHash paper):
 * key = 00 01 .. 0f, message i = the first i bytes of 00 01 02 .. 3e.
 */
const VECTORS: bigint[] = [
  0x726fdb47dd0e0e31n, 0x74f839c593dc67fdn, 0x0d6c8009d9a94f5an, 0x85676696d7fb7e2dn,
  0xcf2794e0277187b7n, 0x18765564cd99a68dn, 0xcbc9466e58fee3cen, 0xab0200f58b01d137n,
  0x93f5f5799a932462n, 0x9e0082df0ba9e4b0n, 0x7a5dbbc594ddb9f3n, 0xf4b32f46226bada7n,
  0x751e8fbc860ee5fbn, 0x14ea5627c0843d90n, 0xf723ca908e7af2een, 0xa129ca6149be45e5n,
  0x3f2acc7f57c29bdbn, 0x699ae9f52cbe4794n, 0x4bc1b3f0968dd39cn, 0xbb6dc91da77961bdn,
  0xbed65cf21aa2ee98n, 0xd0f2cbb02e3b67c7n, 0x93536795e3a33e88n, 0xa80c038ccd5ccec8n,
  0xb8ad50c6f649af94n, 0xbce192de8a85b8ean, 0x17d835b85bbb15f3n, 0x2f2e6163076bcfadn,
  0xde4daaaca71dc9a5n, 0xa6a2506687956571n, 0xad87a3535c49ef28n, 0x32d892fad841c342n,
  0x7127512f72f27ccen, 0xa7f32346f95978e3n, 0x12e0b01abb051238n, 0x15e034d40fa197aen,
  0x314dffbe0815a3b4n, 0x027990f029623981n, 0xcadcd4e59ef40c4dn, 0x9abfd8766a33735cn,
  0x0e3ea96b5304a7d0n, 0xad0c42d6fc585992n, 0x187306c89bc215a9n, 0xd4a60abcf3792b95n,
  0xf935451de4f21df2n, 0xa9538f0419755787n, 0xdb9acddff56ca510n, 0xd06c98cd5c0975ebn,
  0xe612a3cb9ecba951n, 0xc766e62cfcadaf96n, 0xee64435a9752fe72n, 0xa192d576b245165an,
  0x0a8787bf8ecb74b2n, 0x81b3e73d20b49b6fn, 0x7fa8220ba3b2ecean, 0x245731c13ca42499n,
  0xb78dbfaf3a8d83bdn, 0xea1ad565322a1a0bn, 0x60e61c23a3795013n, 0x6606d7e446282b93n,
  0x6ca4ecb15c5f91e1n, 0x9f626da15c9625f3n, 0xe51b38608ef25f57n, 0x958a324ceb064572n,
];

describe('siphash24', () => {
  const key = Uint8Array.from({ length: 16 }, (_, i) => i);
  const data = Uint8Array.from({ length: 64 }, (_, i) => i);

  it('matches all 64 published SipHash-2-4 test vectors', () => {
    for (let len = 0; len < 64; len++) {
      const { hi, lo } = siphash24(key, data.subarray(0, len));
      expect((BigInt(hi) << 32n) | BigInt(lo), `length ${len}`).toBe(VECTORS[len]);
    }
  });

  it('rejects a key that is not 16 bytes', () => {
    expect(() => siphash24(new Uint8Array(15), data)).toThrow(RangeError);
  });
});

describe('IsnGenerator (RFC 6528)', () => {
  const secret = Uint8Array.from({ length: 16 }, (_, i) => (i * 37 + 11) & 0xff);
  const A = 0x0a000001, B = 0x0a000002;

  it('is a pure function of the tuple, the time and the secret', () => {
    const g1 = new IsnGenerator(secret);
    const g2 = new IsnGenerator(Uint8Array.from(secret));
    expect(g1.isn(A, 80, B, 40000, 1234)).toBe(g2.isn(A, 80, B, 40000, 1234));
    expect(g1.isn(A, 80, B, 40000, 1234)).toBe(g1.isn(A, 80, B, 40000, 1234));
  });

  it('returns uint32 values', () => {
    const g = new IsnGenerator(secret);
    const r = mulberry32(7);
    for (let i = 0; i < 1000; i++) {
      const v = g.isn(u32(r), u16(r), u32(r), u16(r), r() * 1e13);
      expect(Number.isInteger(v) && v >= 0 && v <= 0xffffffff).toBe(true);
    }
  });

  it('gives different tuples different ISNs (seeded, 10k tuples)', () => {
    const g = new IsnGenerator(secret);
    const r = mulberry32(8);
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) seen.add(g.isn(A, 80, u32(r), u16(r), 5000));
    expect(seen.size).toBe(10_000);
    // Swapping the ends is a different tuple too.
    expect(g.isn(A, 80, B, 40000, 0)).not.toBe(g.isn(B, 40000, A, 80, 0));
  });

  it('advances by 250 per ms on the same tuple (4 µs clock), also across the 2^32 wrap', () => {
    const g = new IsnGenerator(secret);
    const t0 = 1_000_000;
    const a = g.isn(A, 80, B, 40000, t0);
    expect(seqSub(g.isn(A, 80, B, 40000, t0 + 1), a)).toBe(250);
    expect(seqSub(g.isn(A, 80, B, 40000, t0 + 1000), a)).toBe(250_000);
    expect(seqSub(g.isn(A, 80, B, 40000, t0 + 0.004), a)).toBe(1); // one 4 µs tick
    // The timer wraps after 2^32 * 4 µs ≈ 4.77 h; one ms later is still 250 ahead.
    const tWrap = 2 ** 32 / 250 - 0.5;
    expect(seqSub(g.isn(A, 80, B, 40000, tWrap + 1), g.isn(A, 80, B, 40000, tWrap))).toBe(250);
    // A realistic wall-clock time (Date.now() scale) still behaves.
    const tWall = 1_750_000_000_000;
    expect(seqSub(g.isn(A, 80, B, 40000, tWall + 2), g.isn(A, 80, B, 40000, tWall))).toBe(500);
  });

  it('changing one port flips about half of the 32 bits (seeded)', () => {
    const g = new IsnGenerator(secret);
    const r = mulberry32(9);
    let flipped = 0;
    const N = 2000;
    for (let i = 0; i < N; i++) {
      const la = u32(r), lp = u16(r), ra = u32(r), rp = u16(r);
      const a = g.isn(la, lp, ra, rp, 777);
      const b = g.isn(la, lp, ra, (rp + 1) & 0xffff, 777);
      flipped += popcount(a ^ b);
    }
    const mean = flipped / N;
    expect(mean).toBeGreaterThan(15);
    expect(mean).toBeLessThan(17);
  });

  it('consecutive client ports do not give predictable ISN steps', () => {
    // A counter-based stack would show a constant difference here.
    const g = new IsnGenerator(secret);
    const diffs = new Set<number>();
    let prev = g.isn(A, 80, B, 40000, 100);
    for (let p = 40001; p < 40101; p++) {
      const cur = g.isn(A, 80, B, p, 100);
      diffs.add((cur - prev) >>> 0);
      prev = cur;
    }
    expect(diffs.size).toBe(100);
  });

  it('different secrets give different ISNs', () => {
    const other = Uint8Array.from(secret);
    other[5]! ^= 1;
    const g1 = new IsnGenerator(secret), g2 = new IsnGenerator(other);
    let same = 0;
    for (let p = 1; p <= 100; p++) if (g1.isn(A, 80, B, p, 0) === g2.isn(A, 80, B, p, 0)) same++;
    expect(same).toBe(0);
  });

  it('uses every byte of a longer secret', () => {
    const long = new Uint8Array(32);
    long.set(secret);
    const long2 = Uint8Array.from(long);
    long2[31] = 0x5a;
    expect(new IsnGenerator(long).isn(A, 80, B, 1, 0)).toBe(new IsnGenerator(secret).isn(A, 80, B, 1, 0));
    expect(new IsnGenerator(long2).isn(A, 80, B, 1, 0)).not.toBe(new IsnGenerator(long).isn(A, 80, B, 1, 0));
  });

  it('does not alias the caller’s secret buffer', () => {
    const s = Uint8Array.from(secret);
    const g = new IsnGenerator(s);
    const before = g.isn(A, 80, B, 1, 0);
    s.fill(0);
    expect(g.isn(A, 80, B, 1, 0)).toBe(before);
  });

  it('rejects a secret shorter than 16 bytes', () => {
    expect(() => new IsnGenerator(new Uint8Array(8))).toThrow(RangeError);
  });

  it('draws a random secret by default', () => {
    const g1 = new IsnGenerator(), g2 = new IsnGenerator();
    const tuple = (g: IsnGenerator) => [1, 2, 3, 4].map((p) => g.isn(A, 80, B, p, 0));
    // Equal only if four 32-bit hashes under two random keys all collide (p ≈ 2^-128).
    expect(tuple(g1)).not.toEqual(tuple(g2));
  });
});
