import { describe, expect, it } from 'vitest';
import { DEFAULT_MEM_LIMIT, MemoryBudget } from '../../src/tcp/memory.js';

describe('MemoryBudget (like Linux tcp_mem: low, pressure, limit)', () => {
  it('enters pressure at 3/4 of the limit and leaves it only below 1/2, so it does not flap', () => {
    const m = new MemoryBudget(1000);
    m.charge(749);
    expect(m.underPressure).toBe(false);
    m.charge(1);
    expect(m.underPressure).toBe(true);
    m.charge(-200); // 550: between low and pressure, still under pressure
    expect(m.underPressure).toBe(true);
    m.charge(-51); // 499: below low
    expect(m.underPressure).toBe(false);
    m.charge(200); // 699: below the pressure threshold again
    expect(m.underPressure).toBe(false);
  });
  it('allows data up to the hard limit, and remembers its peak', () => {
    const m = new MemoryBudget(1000);
    m.charge(900);
    expect(m.allows(100)).toBe(true);
    expect(m.allows(101)).toBe(false);
    m.charge(-900);
    expect(m.used).toBe(0);
    expect(m.peak).toBe(900);
    expect(new MemoryBudget().limit).toBe(DEFAULT_MEM_LIMIT);
  });
});
