import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/runtime/random.js';
import {
  seqAdd,
  seqGeq,
  seqGt,
  seqInRange,
  seqLeq,
  seqLt,
  seqMax,
  seqMin,
  seqSub,
} from '../../src/tcp/seq.js';
import { u32 } from '../helpers/unit.js';

/** Small seeded PRNG (mulberry32) so failures replay exactly. */
const mulberry32 = seededRandom;

describe('seqAdd', () => {
  it('wraps past 0xffffffff to 0', () => {
    expect(seqAdd(0xffffffff, 1)).toBe(0);
    expect(seqAdd(0xfffffff0, 0x20)).toBe(0x10);
  });
  it('accepts negative n and wraps below 0', () => {
    expect(seqAdd(0, -1)).toBe(0xffffffff);
    expect(seqAdd(5, -3)).toBe(2);
  });
  it('always returns a uint32', () => {
    const r = mulberry32(1);
    for (let i = 0; i < 1000; i++) {
      const v = seqAdd(u32(r), Math.floor(r() * 2 ** 33) - 2 ** 32);
      expect(Number.isInteger(v) && v >= 0 && v <= 0xffffffff).toBe(true);
    }
  });
});

describe('seqSub', () => {
  it('gives the signed distance across the wrap', () => {
    expect(seqSub(0, 0xffffffff)).toBe(1);
    expect(seqSub(0xffffffff, 0)).toBe(-1);
    expect(seqSub(10, 0xfffffff6)).toBe(20);
    expect(seqSub(100, 40)).toBe(60);
    expect(seqSub(40, 100)).toBe(-60);
  });
  it('stays within (-2^31, 2^31]', () => {
    expect(seqSub(0x80000000, 0)).toBe(2 ** 31);
    expect(seqSub(0, 0x80000000)).toBe(2 ** 31);
    expect(seqSub(0x7fffffff, 0)).toBe(2 ** 31 - 1);
    expect(seqSub(0, 0x7fffffff)).toBe(-(2 ** 31 - 1));
  });
  it('is the inverse of seqAdd for |n| < 2^31', () => {
    const r = mulberry32(2);
    for (let i = 0; i < 2000; i++) {
      const a = u32(r);
      const n = Math.floor(r() * (2 ** 32 - 2)) - (2 ** 31 - 1);
      expect(seqSub(seqAdd(a, n), a)).toBe(n);
    }
  });
});

describe('comparisons', () => {
  it('order numbers across the wrap', () => {
    expect(seqLt(0xffffffff, 0)).toBe(true);
    expect(seqGt(0, 0xffffffff)).toBe(true);
    expect(seqLt(0xfffffff0, 5)).toBe(true);
    expect(seqLeq(7, 7)).toBe(true);
    expect(seqGeq(7, 7)).toBe(true);
    expect(seqLt(7, 7)).toBe(false);
    expect(seqGt(7, 7)).toBe(false);
    // Plain `<` would say the opposite here: that is the whole point.
    expect(0xfffffff0 < 5).toBe(false);
  });

  it('seqMax / seqMin pick by circle order', () => {
    expect(seqMax(0xfffffffe, 3)).toBe(3);
    expect(seqMin(0xfffffffe, 3)).toBe(0xfffffffe);
    expect(seqMax(10, 20)).toBe(20);
    expect(seqMin(10, 20)).toBe(10);
  });

  it('property: antisymmetry, trichotomy and consistency (seeded)', () => {
    const r = mulberry32(3);
    for (let i = 0; i < 5000; i++) {
      const a = u32(r);
      // Stay strictly within half the circle, where the order is well defined.
      const b = seqAdd(a, Math.floor(r() * (2 ** 32 - 2)) - (2 ** 31 - 1));
      const lt = seqLt(a, b), gt = seqGt(a, b), eq = a === b;
      expect(Number(lt) + Number(gt) + Number(eq)).toBe(1);
      expect(seqLt(b, a)).toBe(gt);
      expect(seqLeq(a, b)).toBe(lt || eq);
      expect(seqGeq(a, b)).toBe(gt || eq);
      expect(seqMax(a, b)).toBe(gt ? a : b);
      expect(seqMin(a, b)).toBe(lt ? a : b);
    }
  });

  it('property: transitivity when all three lie within a 2^31 window (seeded)', () => {
    const r = mulberry32(4);
    for (let i = 0; i < 5000; i++) {
      const base = u32(r);
      const span = 2 ** 31 - 1;
      const [a, b, c] = [0, 0, 0].map(() => seqAdd(base, Math.floor(r() * span))) as [number, number, number];
      if (seqLt(a, b) && seqLt(b, c)) expect(seqLt(a, c)).toBe(true);
      if (seqLeq(a, b) && seqLeq(b, c)) expect(seqLeq(a, c)).toBe(true);
      // Adding the same offset to both sides preserves the order (translation invariance).
      const k = u32(r);
      expect(seqLt(seqAdd(a, k), seqAdd(b, k))).toBe(seqLt(a, b));
    }
  });
});

describe('seqInRange', () => {
  it('is half-open: lo included, hi excluded', () => {
    expect(seqInRange(10, 10, 20)).toBe(true);
    expect(seqInRange(19, 10, 20)).toBe(true);
    expect(seqInRange(20, 10, 20)).toBe(false);
    expect(seqInRange(9, 10, 20)).toBe(false);
  });
  it('works across the wrap', () => {
    const lo = 0xfffffff0, hi = 0x10;
    expect(seqInRange(0xfffffff0, lo, hi)).toBe(true);
    expect(seqInRange(0xffffffff, lo, hi)).toBe(true);
    expect(seqInRange(0, lo, hi)).toBe(true);
    expect(seqInRange(0xf, lo, hi)).toBe(true);
    expect(seqInRange(0x10, lo, hi)).toBe(false);
    expect(seqInRange(0xffffffef, lo, hi)).toBe(false);
    expect(seqInRange(0x80000000, lo, hi)).toBe(false);
  });
  it('an empty range contains nothing', () => {
    expect(seqInRange(5, 5, 5)).toBe(false);
    expect(seqInRange(0, 0, 0)).toBe(false);
  });
  it('property: agrees with lo <= x < hi via seqSub (seeded)', () => {
    const r = mulberry32(5);
    for (let i = 0; i < 5000; i++) {
      const lo = u32(r);
      const len = Math.floor(r() * 2 ** 20);
      const hi = seqAdd(lo, len);
      const x = seqAdd(lo, Math.floor(r() * 2 ** 21) - 2 ** 20);
      const d = seqSub(x, lo);
      expect(seqInRange(x, lo, hi)).toBe(d >= 0 && d < len);
    }
  });
});
