import { describe, expect, it } from 'vitest';
import { RtoEstimator } from '../../src/tcp/rto.js';

describe('RtoEstimator (RFC 6298)', () => {
  it('starts at the initial RTO of 1 s with no estimate (§2.1)', () => {
    const e = new RtoEstimator();
    expect(e.rto).toBe(1000);
    expect(e.srtt).toBeUndefined();
    expect(e.rttvar).toBeUndefined();
  });

  it('first sample: SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4*RTTVAR) (§2.2)', () => {
    const e = new RtoEstimator({ minRto: 1 });
    e.sample(100);
    expect(e.srtt).toBe(100);
    expect(e.rttvar).toBe(50);
    expect(e.rto).toBe(300);
  });

  it('later samples: RTTVAR uses the old SRTT, then SRTT moves by 1/8 (§2.3)', () => {
    const e = new RtoEstimator({ minRto: 1 });
    e.sample(100);
    e.sample(200);
    // RTTVAR = 3/4*50 + 1/4*|100-200| = 62.5 ; SRTT = 7/8*100 + 1/8*200 = 112.5
    expect(e.rttvar).toBe(62.5);
    expect(e.srtt).toBe(112.5);
    expect(e.rto).toBe(112.5 + 4 * 62.5);
    e.sample(50);
    // RTTVAR = 3/4*62.5 + 1/4*|112.5-50| = 46.875 + 15.625 = 62.5 ; SRTT = 7/8*112.5 + 1/8*50 = 104.6875
    expect(e.rttvar).toBe(62.5);
    expect(e.srtt).toBe(104.6875);
    expect(e.rto).toBe(104.6875 + 250);
  });

  it('the clock granularity G is the floor of the variance term', () => {
    const e = new RtoEstimator({ minRto: 1, granularity: 100 });
    for (let i = 0; i < 200; i++) e.sample(10);
    expect(e.srtt).toBeCloseTo(10, 9);
    expect(e.rttvar!).toBeLessThan(1e-6);
    expect(e.rto).toBeCloseTo(110, 6); // SRTT + G, since 4*RTTVAR < G
  });

  it('converges towards a steady RTT', () => {
    const e = new RtoEstimator({ minRto: 1 });
    e.sample(500);
    for (let i = 0; i < 200; i++) e.sample(40);
    expect(e.srtt).toBeCloseTo(40, 3);
    expect(e.rto).toBeGreaterThanOrEqual(41);
    expect(e.rto).toBeLessThan(42);
  });

  it('clamps to minRto (default 200 ms, like Linux) (§2.4)', () => {
    const e = new RtoEstimator();
    e.sample(10); // 10 + 4*5 = 30
    expect(e.rto).toBe(200);
    const strict = new RtoEstimator({ minRto: 1000 }); // the RFC's own 1 s
    strict.sample(10);
    expect(strict.rto).toBe(1000);
  });

  it('clamps to maxRto (default 120 s) (§2.5)', () => {
    const e = new RtoEstimator();
    e.sample(100_000); // 100000 + 200000
    expect(e.rto).toBe(120_000);
    const f = new RtoEstimator({ maxRto: 60_000 });
    f.sample(50_000);
    expect(f.rto).toBe(60_000);
  });

  it('backoff doubles the RTO and stops at maxRto (§5.5)', () => {
    const e = new RtoEstimator({ maxRto: 60_000 });
    const seen: number[] = [e.rto];
    for (let i = 0; i < 10; i++) {
      e.backoff();
      seen.push(e.rto);
    }
    expect(seen).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000, 60000]);
    // Counting stops at the ceiling, so thousands of backoffs cannot overflow.
    for (let i = 0; i < 5000; i++) e.backoff();
    expect(e.rto).toBe(60_000);
    expect(e.backoffCount).toBe(6);
  });

  it('backoff starts from the clamped RTO', () => {
    const e = new RtoEstimator(); // minRto 200
    e.sample(10); // estimate 30, clamped to 200
    e.backoff();
    expect(e.rto).toBe(400);
  });

  it('a new sample resets the backoff', () => {
    const e = new RtoEstimator({ minRto: 1 });
    e.sample(100);
    e.backoff();
    e.backoff();
    expect(e.rto).toBe(1200);
    e.sample(100);
    // RTTVAR = 3/4*50 + 0 = 37.5 ; SRTT = 100 ; RTO = 100 + 150, no backoff.
    expect(e.rto).toBe(250);
    expect(e.backoffCount).toBe(0);
  });

  it('resetBackoff returns to the estimate without touching it', () => {
    const e = new RtoEstimator({ minRto: 1 });
    e.sample(100);
    e.backoff();
    expect(e.rto).toBe(600);
    e.resetBackoff();
    expect(e.rto).toBe(300);
    expect(e.srtt).toBe(100);
    expect(e.rttvar).toBe(50);
  });

  it('ignores impossible samples (negative, NaN, infinite)', () => {
    const e = new RtoEstimator({ minRto: 1 });
    e.sample(-5);
    e.sample(Number.NaN);
    e.sample(Number.POSITIVE_INFINITY);
    expect(e.srtt).toBeUndefined();
    expect(e.rto).toBe(1000);
    e.sample(0); // loopback can measure 0 ms: valid, RTO = 0 + max(G, 0) = G, clamped to minRto
    expect(e.srtt).toBe(0);
    expect(e.rto).toBe(1);
  });

  it('rejects inconsistent options', () => {
    expect(() => new RtoEstimator({ minRto: 500, maxRto: 100 })).toThrow(RangeError);
    expect(() => new RtoEstimator({ minRto: 0 })).toThrow(RangeError);
    expect(() => new RtoEstimator({ granularity: 0 })).toThrow(RangeError);
    expect(() => new RtoEstimator({ initialRto: 0 })).toThrow(/initialRto and granularity must be positive/);
    expect(() => new RtoEstimator({ minRto: 500, maxRto: 100 })).toThrow(/need 0 < minRto <= maxRto \(got 500, 100\)/);
    // A fixed RTO (minRto = maxRto) is consistent.
    expect(new RtoEstimator({ minRto: 300, maxRto: 300, initialRto: 300 }).rto).toBe(300);
  });
});

describe('RFC 6298 §5.7: after a lost SYN', () => {
  it('starts data transmission with an RTO of 3 s when no RTT was measured', () => {
    const r = new RtoEstimator();
    r.backoff();
    r.afterSynLoss();
    expect(r.rto).toBe(3000);
    expect(r.backoffCount).toBe(0);
  });
  it('keeps a measured estimate', () => {
    const r = new RtoEstimator();
    r.sample(100);
    r.afterSynLoss();
    expect(r.rto).toBe(300);
  });
});
