/**
 * SACK blocks in little option space (RFC 2018 §3: as many blocks as fit; RFC 2883 §4: the D-SACK
 * block first), and the rescue retransmission's condition (RFC 6675 §4 NextSeg rule 4: only data
 * above the highest retransmission, HighRxt, can be rescued).
 */
import { describe, expect, it } from 'vitest';
import { SackReporter, Scoreboard } from '../../src/tcp/sack.js';

describe('SACK blocks and the rescue retransmission', () => {
  it('room for one block: the D-SACK alone, not the range that holds it; no room: the D-SACK waits for an ACK with room', () => {
    const rep = new SackReporter();
    const ranges: Array<[number, number]> = [[700, 800], [500, 600]];
    rep.duplicate(720, 760);
    expect(rep.blocks(ranges, 0)).toEqual([]);
    expect(rep.pendingDsack).toEqual([720, 760]);
    expect(rep.blocks(ranges, 1)).toEqual([[720, 760]]);
    expect(rep.pendingDsack).toBeUndefined();
    expect(rep.blocks(ranges, 1)).toEqual([[700, 800]]);
  });

  it('no rescue once the highest un-SACKed segment has been retransmitted (it is not above HighRxt)', () => {
    const sb = new Scoreboard(undefined, 100);
    for (let i = 0; i < 4; i++) sb.onSend(i * 100, 100, i);
    sb.onAck(0, [[100, 200]], 400);
    sb.onSend(300, 100, 10); // the last segment resent (a tail loss probe)
    expect(sb.rescue(400)).toBeUndefined();
    const fresh = new Scoreboard(undefined, 100);
    for (let i = 0; i < 4; i++) fresh.onSend(i * 100, 100, i);
    fresh.onAck(0, [[100, 200]], 400);
    expect(fresh.rescue(400)?.start).toBe(300);
  });
});
