/**
 * The edges of the timestamps option's per-connection rules (RFC 7323 §4.3, §5.3, §5.5; RFC 6191):
 * PAWS before the peer's first timestamp, the 24-day idle rule counted from when TS.Recent was set
 * (not from time 0), the first TS.Recent, and when TIME-WAIT's timestamp rule may decide at all.
 */
import { describe, expect, it } from 'vitest';
import { Timestamps } from '../../src/tcp/timestamps.js';

const DAY_MS = 24 * 3600 * 1000;

describe('timestamps edge rules (RFC 7323)', () => {
  it('before the peer\'s first timestamp nothing is old, whatever its TSval (RFC 7323 §5.3 R1 needs TS.Recent)', () => {
    const ts = new Timestamps(0);
    ts.enabled = true;
    expect(ts.isOld(0xfffffff0, 0)).toBe(false); // 16 "before" 0 modulo 2^32
    expect(ts.isOld(0x80000001, 5)).toBe(false);
  });

  it('TS.Recent goes stale 24 days after it was last set, counted from that moment (RFC 7323 §5.5)', () => {
    const ts = new Timestamps(0);
    ts.enabled = true;
    const setAt = 10 * DAY_MS;
    ts.onSyn(5000, setAt);
    expect(ts.isOld(4000, setAt + 24 * DAY_MS)).toBe(true); // exactly 24 days: still valid
    expect(ts.isOld(4000, setAt + 24 * DAY_MS + 1)).toBe(false); // beyond: not trusted
    expect(ts.isOld(4000, 24 * DAY_MS + 1)).toBe(true); // 14 days after it was set
  });

  it('the first TSval taken by the §4.3 update becomes TS.Recent, even one "before" 0 modulo 2^32', () => {
    const ts = new Timestamps(0);
    ts.enabled = true;
    ts.ackSent(1);
    ts.update(1, 0x90000000, 7);
    expect([ts.hasRecent, ts.tsRecent, ts.tsRecentAt, ts.echo()]).toEqual([true, 0x90000000, 7, 0x90000000]);
  });

  it('the TIME-WAIT timestamp rule decides only when the old connection used timestamps and has a TS.Recent (RFC 6191 §2)', () => {
    const notUsed = new Timestamps(0);
    notUsed.onSyn(7000, 0); // the peer's SYN carried one, but ours did not: option off
    expect(notUsed.synIsNewer(8000)).toBeUndefined();
    const noRecent = new Timestamps(0);
    noRecent.enabled = true;
    expect(noRecent.synIsNewer(8000)).toBeUndefined();
  });
});
