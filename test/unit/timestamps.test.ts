import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/runtime/random.js';
import { IsnGenerator } from '../../src/tcp/isn.js';
import { MAX_TS_RTT_MS, PAWS_IDLE_LIMIT_MS, Timestamps } from '../../src/tcp/timestamps.js';

const SECRET = Uint8Array.from({ length: 16 }, (_, i) => i * 7);

function withRecent(tsVal: number, at = 0, lastAckSent = 1000): Timestamps {
  const ts = new Timestamps(0);
  ts.enabled = true;
  ts.onSyn(tsVal, at);
  ts.ackSent(lastAckSent);
  return ts;
}

describe('timestamps (RFC 7323)', () => {
  it('[ts.paws] PAWS: a TSval older than TS.Recent is an old duplicate, modulo 2^32; a stale TS.Recent (24 days idle) is not trusted (RFC 7323 §5.3 R1, §5.5)', () => {
    const ts = withRecent(5000);
    expect(ts.isOld(4998, 10)).toBe(true);
    // One tick of tolerance, as Linux (TCP_PAWS_WINDOW): segments sent in the same millisecond
    // as the one that set TS.Recent may be reordered.
    expect(ts.isOld(4999, 10)).toBe(false);
    expect(ts.isOld(5000, 10)).toBe(false); // equal is not older
    expect(ts.isOld(5001, 10)).toBe(false);
    // Across the wrap: 0xfffffff0 is before 5000 + 2^32...
    const wrapped = withRecent(0x10);
    expect(wrapped.isOld(0xfffffff0, 10)).toBe(true);
    expect(wrapped.isOld(0x11, 10)).toBe(false);
    // ...and a clock half the circle ahead counts as older, as RFC 7323 §5.2 defines it.
    expect(ts.isOld((5000 + 0x80000001) >>> 0, 10)).toBe(true);
    // 24 days without a segment: TS.Recent is invalid and PAWS accepts anything.
    expect(ts.isOld(1, PAWS_IDLE_LIMIT_MS)).toBe(true);
    expect(ts.isOld(1, PAWS_IDLE_LIMIT_MS + 1)).toBe(false);
    // Before any timestamp from the peer, nothing is old.
    expect(new Timestamps(0).isOld(0, 0)).toBe(false);
  });

  it('[ts.recent-update] TS.Recent moves only forward and only for a segment at or before Last.ACK.sent (RFC 7323 §4.3)', () => {
    const ts = withRecent(100, 0, 1000);
    ts.update(2000, 150, 5); // beyond Last.ACK.sent (out of order, after a hole): ignored
    expect(ts.tsRecent).toBe(100);
    ts.update(1000, 150, 6); // starts at Last.ACK.sent: taken
    expect(ts.tsRecent).toBe(150);
    expect(ts.tsRecentAt).toBe(6);
    ts.update(900, 120, 7); // older TSval (a retransmission that passed PAWS?): never backwards
    expect(ts.tsRecent).toBe(150);
    ts.update(900, 150, 8); // equal: taken, refreshes the 24-day clock
    expect(ts.tsRecentAt).toBe(8);
    expect(ts.echo()).toBe(150);
    // A delayed ACK covering two segments echoes the earlier one's TSval (§4.3's example):
    const d = withRecent(1, 0, 1000);
    d.update(1000, 10, 1); // segment 1000:2000, TSval 10
    d.update(2000, 11, 2); // segment 2000:3000 arrives before the ACK: 2000 > Last.ACK.sent
    expect(d.echo()).toBe(10);
    d.ackSent(3000);
    d.update(3000, 12, 3);
    expect(d.echo()).toBe(12);
    // Our SYN echoes 0: nothing has been received.
    expect(new Timestamps(0).echo()).toBe(0);
  });

  it('[ts.rtt-echo] RTT from the echo: our clock minus TSecr; a zero, future or ancient echo gives no sample (RFC 7323 §4.1)', () => {
    const ts = new Timestamps(0xfffffff0); // the clock wraps 16 ms in
    const sent = ts.value(10); // 0xfffffffa
    expect(ts.rtt(sent, 10)).toBe(0);
    expect(ts.rtt(sent, 47.9)).toBe(37); // whole milliseconds; across the wrap
    expect(ts.rtt(ts.value(60), 50)).toBeUndefined(); // from the future
    expect(ts.rtt(ts.value(0), MAX_TS_RTT_MS)).toBe(MAX_TS_RTT_MS);
    expect(ts.rtt(ts.value(0), MAX_TS_RTT_MS + 1)).toBeUndefined();
    // A peer echoing random values yields only samples in [0, MAX_TS_RTT_MS].
    const r = seededRandom(3);
    for (let i = 0; i < 2000; i++) {
      const s = ts.rtt(Math.floor(r() * 2 ** 32), 1e6);
      if (s !== undefined) expect(s >= 0 && s <= MAX_TS_RTT_MS).toBe(true);
    }
  });

  it('[ts.offset] the clock offset is a keyed hash of the 4-tuple: stable per 4-tuple, different across 4-tuples and keys, unrelated to the ISN (RFC 7323 §5.4, §7.1)', () => {
    const g = new IsnGenerator(SECRET);
    const a = g.tsOffset(0x0a000001, 80, 0x0a000002, 40000);
    expect(g.tsOffset(0x0a000001, 80, 0x0a000002, 40000)).toBe(a); // a new incarnation continues the clock
    expect(new IsnGenerator(SECRET).tsOffset(0x0a000001, 80, 0x0a000002, 40000)).toBe(a);
    expect(new IsnGenerator(SECRET.map((b) => b ^ 1)).tsOffset(0x0a000001, 80, 0x0a000002, 40000)).not.toBe(a);
    const seen = new Set<number>();
    for (let port = 40000; port < 41000; port++) seen.add(g.tsOffset(0x0a000001, 80, 0x0a000002, port));
    expect(seen.size).toBe(1000); // no collisions among 1000 neighbouring ports
    // The ISN's hash part is not the offset (two keys): at now = 0 the ISN is F itself.
    expect(g.isn(0x0a000001, 80, 0x0a000002, 40000, 0)).not.toBe(a);
    // The timestamp clock: 1 ms ticks from the offset.
    const ts = new Timestamps(a);
    expect(ts.value(0)).toBe(a);
    expect(ts.value(1234.9)).toBe((a + 1234) >>> 0);
  });

  it('[ts.time-wait-syn] TIME-WAIT: a SYN whose TSval is newer than TS.Recent may reopen the 4-tuple; without timestamps the ISN rule decides (RFC 6191 §2)', () => {
    const ts = withRecent(7000);
    expect(ts.synIsNewer(7001)).toBe(true);
    expect(ts.synIsNewer(7000)).toBe(false);
    expect(ts.synIsNewer(6000)).toBe(false);
    expect(ts.synIsNewer(undefined)).toBeUndefined();
    const off = new Timestamps(0);
    expect(off.synIsNewer(1)).toBeUndefined();
  });
});
