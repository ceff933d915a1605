/**
 * The scoreboard at its record bound (src/tcp/sack.ts, `maxRecords`): new data joins the last
 * record, and a record that cannot be split is resent as a whole. The sender resends a lost record
 * one MSS at a time from its start (RFC 6675 NextSeg), so that first MSS must take the record off
 * the retransmission queue, or NextSeg would offer the same bytes again at once.
 */
import { describe, expect, it } from 'vitest';
import { Scoreboard } from '../../src/tcp/sack.js';

const MSS = 100;

describe('SACK scoreboard at its record bound', () => {
  it('resending the first MSS of a lost record too big to split takes it off the retransmission queue: NextSeg moves on, pipe counts it', () => {
    const sb = new Scoreboard(4, MSS);
    for (let i = 0; i < 10; i++) sb.onSend(i * MSS, MSS, i); // records 0, 1, 2, and 300-1000 joined
    expect([...sb.records()].map((r) => `${r.start}-${r.end}`)).toEqual(['0-100', '100-200', '200-300', '300-1000']);
    sb.markAllLost();
    expect(sb.pipe).toBe(0);
    for (const start of [0, 100, 200, 300]) {
      const lost = sb.nextLost()!;
      expect(lost.start).toBe(start);
      sb.onSend(lost.start, MSS, 20); // what the sender sends: at most one MSS of it
    }
    expect(sb.nextLost()).toBeUndefined(); // not 300-1000 again
    expect(sb.lostBytes).toBe(0);
    expect(sb.pipe).toBe(1000);
  });
});
