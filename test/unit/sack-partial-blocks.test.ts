/**
 * SACK blocks that cover part of a record (RFC 6675 §2: the scoreboard is kept per octet). A
 * record is one transmission; with offload it is a super-segment of several MSS, and the peer,
 * which received the pieces the link cut it into, SACKs them one by one. The scoreboard splits the
 * record so that exactly the octets the block covers are SACKed — never more (that would hide a
 * loss), and, at its record bound where it cannot split, rather fewer.
 */
import { describe, expect, it } from 'vitest';
import { Scoreboard } from '../../src/tcp/sack.js';

const MSS = 100;

/** One super-segment of `n` MSS from sequence 0, sent at time 0. */
function superSegment(n: number, maxRecords = 4096): Scoreboard {
  const sb = new Scoreboard(maxRecords, MSS);
  sb.onSend(0, n * MSS, 0);
  return sb;
}

const ranges = (sb: Scoreboard) => [...sb.records()].map((r) => `${r.start}-${r.end}${r.sacked ? ' sacked' : ''}`);

describe('SACK blocks inside a record', () => {
  it('a block in the middle of a super-segment SACKs exactly its octets: the record splits into three', () => {
    const sb = superSegment(3);
    const res = sb.onAck(0, [[100, 200]], 300);
    expect(ranges(sb)).toEqual(['0-100', '100-200 sacked', '200-300']);
    expect([res.newlySacked, sb.sackedBytes, sb.sackedCount]).toEqual([100, 100, 1]);
    expect(res.delivered.map((r) => [r.start, r.end])).toEqual([[100, 200]]);
    // The split pieces keep the transmission time of the record.
    expect([...sb.records()].map((r) => r.xmitTs)).toEqual([0, 0, 0]);
    // What is not SACKed is what a loss marks: both unSACKed pieces.
    expect(sb.pipe).toBe(200);
  });

  it('a block from the start of a record to inside it, and one from inside to its end', () => {
    const sb = superSegment(4);
    sb.onAck(0, [[100, 400]], 400); // from inside the record to its end
    expect(ranges(sb)).toEqual(['0-100', '100-400 sacked']);
    const sb2 = superSegment(4);
    sb2.onAck(0, [[0, 300]], 400); // from its start to inside it
    expect(ranges(sb2)).toEqual(['0-300 sacked', '300-400']);
    expect([sb2.sackedBytes, sb2.pipe]).toEqual([300, 100]);
  });

  it('a block covering pieces of two records SACKs the end of one and the start of the next', () => {
    const sb = new Scoreboard(4096, MSS);
    sb.onSend(0, 300, 0);
    sb.onSend(300, 300, 1);
    sb.onAck(0, [[200, 400]], 600);
    expect(ranges(sb)).toEqual(['0-200', '200-300 sacked', '300-400 sacked', '400-600']);
    expect(sb.sackedBytes).toBe(200);
  });

  it('at the record bound a record cannot be split: a block that covers it only in part SACKs none of it', () => {
    const sb = superSegment(3, 1);
    const res = sb.onAck(0, [[100, 200]], 300);
    expect(ranges(sb)).toEqual(['0-300']);
    expect([res.newlySacked, sb.sackedBytes]).toEqual([0, 0]);
    const sb2 = superSegment(3, 1);
    sb2.onAck(0, [[0, 200]], 300);
    expect(ranges(sb2)).toEqual(['0-300']);
  });
});
