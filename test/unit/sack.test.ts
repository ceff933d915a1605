import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/runtime/random.js';
import { DUP_THRESH, SackReporter, Scoreboard, type SentRecord } from '../../src/tcp/sack.js';
import { seqAdd, seqLeq, seqLt, seqSub } from '../../src/tcp/seq.js';

const MSS = 100;

/** A scoreboard with `n` MSS-sized segments sent from `isn`, at times 0, 1, 2, ... */
function sent(n: number, isn = 1000, maxRecords?: number): Scoreboard {
  const sb = new Scoreboard(maxRecords, MSS);
  for (let i = 0; i < n; i++) sb.onSend(seqAdd(isn, i * MSS), MSS, i);
  return sb;
}

const view = (sb: Scoreboard) =>
  [...sb.records()].map((r) => `${r.start}-${r.end}${r.sacked ? 'S' : ''}${r.lost ? 'L' : ''}${r.retrans ? 'R' : ''}`);

/** Everything the scoreboard must keep true, checked against a brute-force recount. */
function checkInvariants(sb: Scoreboard, una: number, sndMax: number, seed: number): void {
  const recs = [...sb.records()];
  let at = una;
  let pipe = 0, sacked = 0, count = 0, lostWaiting = 0;
  const problems: string[] = [];
  for (const r of recs) {
    if (r.start !== at || !seqLt(r.start, r.end)) problems.push(`record ${r.start}-${r.end} after ${at}`);
    at = r.end;
    const n = seqSub(r.end, r.start);
    if (r.sacked) {
      sacked += n;
      count++;
      if (r.lost || r.retrans) problems.push(`SACKed and lost ${r.start}`);
    } else if (!r.lost || r.retrans) pipe += n;
    else lostWaiting += n;
    if (r.retrans && !r.lost) problems.push(`retrans without lost ${r.start}`);
  }
  if (recs.length > 0 && at !== sndMax) problems.push(`records end at ${at}, not ${sndMax}`);
  // The time list holds exactly the un-SACKed records, oldest transmission first.
  const byTime = [...sb.byTime()];
  const unsacked = recs.filter((r) => !r.sacked);
  if (byTime.length !== unsacked.length || !unsacked.every((r) => byTime.includes(r))) problems.push('time list != un-SACKed records');
  for (let i = 1; i < byTime.length; i++) if (byTime[i - 1]!.xmitTs > byTime[i]!.xmitTs) problems.push('time list out of order');
  expect(
    { pipe: sb.pipe, sacked: sb.sackedBytes, count: sb.sackedCount, lost: sb.lostBytes, problems },
    `seed ${seed}`,
  ).toEqual({ pipe, sacked, count, lost: lostWaiting, problems: [] });
}

/** RFC 6675 IsLost, by its definition, for the record `r`. */
function isLostByDefinition(sb: Scoreboard, r: SentRecord): boolean {
  let count = 0, bytes = 0;
  for (const x of sb.records()) {
    if (x.sacked && seqLt(r.start, x.start)) {
      count++;
      bytes += seqSub(x.end, x.start);
    }
  }
  return count >= DUP_THRESH || bytes > (DUP_THRESH - 1) * MSS;
}

describe('SACK scoreboard (RFC 2018, RFC 6675)', () => {
  it('[sack.scoreboard-basics] SACK blocks mark exactly the segments they cover; pipe = outstanding - SACKed - lost + retransmitted; IsLost by DupThresh segments or bytes (RFC 6675 §4)', () => {
    const sb = sent(10); // 1000..2000
    expect(sb.pipe).toBe(1000);
    // Segment 1000-1100 lost; the peer SACKs 1100-1400 in three ACKs.
    for (const right of [1200, 1300, 1400]) {
      const r = sb.onAck(1000, [[1100, right]], 2000);
      expect(r.invalid).toBe(0);
      expect(r.newlySacked).toBe(MSS);
    }
    expect(sb.sackedBytes).toBe(300);
    expect(sb.pipe).toBe(700);
    // Three SACKed segments above 1000: lost; nothing else is below a SACK.
    expect(sb.markLostByDupThresh()).toBe(MSS);
    expect(view(sb).slice(0, 5)).toEqual(['1000-1100L', '1100-1200S', '1200-1300S', '1300-1400S', '1400-1500']);
    expect(sb.pipe).toBe(600);
    expect(sb.nextLost()?.start).toBe(1000);
    sb.onSend(1000, MSS, 20); // retransmit the hole
    expect(sb.nextLost()).toBeUndefined();
    expect(sb.pipe).toBe(700);
    expect([...sb.byTime()].at(-1)?.start).toBe(1000); // the newest transmission now
    // The cumulative ACK jumps over the SACKed range; records drop away.
    const r = sb.onAck(1400, undefined, 2000);
    expect(r.delivered.map((x) => x.start)).toEqual([1000]); // SACKed ones were delivered earlier
    expect(view(sb)[0]).toBe('1400-1500');
    expect(sb.sackedBytes).toBe(0);
    expect(sb.pipe).toBe(600);
    // Bytes rule: one SACKed block larger than 2*SMSS above a hole is enough (small segments don't hide a loss).
    const big = sent(10);
    big.onAck(1000, [[1100, 1400]], 2000);
    expect(big.sackedCount).toBe(3);
    const one = new Scoreboard(undefined, MSS);
    one.onSend(0, 100, 0);
    one.onSend(100, 250, 1);
    one.onAck(0, [[100, 350]], 350);
    expect(one.sackedCount).toBe(1);
    expect(one.markLostByDupThresh()).toBe(100); // 250 bytes > 2*SMSS above it
  });

  it('[sack.dsack-detect] a first block below SND.UNA, or inside the second block, is a D-SACK: reported, SACKs nothing (RFC 2883 §4)', () => {
    const sb = sent(10);
    sb.onAck(1300, undefined, 2000);
    let r = sb.onAck(1300, [[1100, 1200]], 2000);
    expect(r.dsack).toEqual([1100, 1200]);
    expect(r.invalid).toBe(0);
    expect(sb.sackedBytes).toBe(0);
    r = sb.onAck(1300, [[1500, 1600], [1400, 1700]], 2000);
    expect(r.dsack).toEqual([1500, 1600]);
    expect(sb.sackedBytes).toBe(300); // the second block still counts
    // A D-SACK block is only ever the first one.
    r = sb.onAck(1300, [[1800, 1900], [1100, 1200]], 2000);
    expect(r.dsack).toBeUndefined();
    expect(r.invalid).toBe(1);
  });

  it('[sack.rescue] NextSeg: lost holes first; the rescue retransmission once per recovery, for the highest un-SACKed segment (RFC 6675 §4 rules 1, 4)', () => {
    const sb = sent(6); // 1000..1600
    sb.onAck(1000, [[1100, 1200], [1300, 1400]], 1600);
    sb.onAck(1000, [[1400, 1500], [1100, 1200]], 1600);
    sb.markLostByDupThresh();
    expect(sb.nextLost()?.start).toBe(1000);
    sb.onSend(1000, MSS, 10);
    // 1200-1300 has two SACKed segments (200 bytes) above: not lost by RFC 6675.
    expect(sb.nextLost()).toBeUndefined();
    expect(sb.rescue(1600)?.start).toBe(1500);
    expect(sb.rescue(1600)).toBeUndefined(); // once per recovery
    expect(sb.rescue(2600)?.start).toBe(1500); // a new recovery may rescue again
  });

  it('[sack.rto-all-lost] a timeout marks everything not SACKed lost, keeping the SACK information; a lost retransmission is lost again', () => {
    const sb = sent(5);
    sb.onAck(1000, [[1200, 1300]], 1500);
    sb.markAllLost();
    expect(view(sb)).toEqual(['1000-1100L', '1100-1200L', '1200-1300S', '1300-1400L', '1400-1500L']);
    expect(sb.pipe).toBe(0);
    sb.onSend(1000, MSS, 50);
    expect(sb.pipe).toBe(MSS);
    const r = [...sb.records()][0]!;
    expect(sb.markLost(r)).toBe(MSS); // the retransmission was lost too
    expect(sb.pipe).toBe(0);
    expect(sb.nextLost()?.start).toBe(1000);
  });

  it('[sack.hostile-blocks] blocks outside SND.UNA..SND.MAX, reversed or empty change nothing; thousands of tiny blocks stay within the record bound (RFC 2018 §3)', () => {
    const sb = sent(8, 0xfffffe00); // crosses the wrap
    const before = JSON.stringify(view(sb));
    const una = 0xfffffe00;
    const sndMax = seqAdd(una, 800);
    const bad: Array<[number, number]> = [
      [seqAdd(una, -100), seqAdd(una, 50)], // starts below SND.UNA, is not a D-SACK (right above UNA)
      [seqAdd(sndMax, -50), seqAdd(sndMax, 50)], // past SND.MAX
      [seqAdd(una, 300), seqAdd(una, 200)], // reversed
      [seqAdd(una, 300), seqAdd(una, 300)], // empty
      [0x12345678, 0x12345679], // nowhere near
    ];
    for (const b of bad) {
      const r = sb.onAck(una, [[seqAdd(una, 400), seqAdd(una, 500)], b], sndMax);
      expect(r.invalid).toBe(1);
    }
    // Only the one valid block took effect.
    expect(sb.sackedBytes).toBe(100);
    expect(JSON.stringify(view(sb))).not.toBe(before);
    checkInvariants(sb, una, sndMax, 0);

    // 20 000 one-byte blocks over a 64 KB flight sent as 640 segments, with a bound of 1000 records.
    const big = new Scoreboard(1000, MSS);
    for (let i = 0; i < 640; i++) big.onSend(i * MSS, MSS, i);
    const r = seededRandom(11);
    for (let k = 0; k < 5000; k++) {
      const blocks: Array<[number, number]> = [];
      for (let b = 0; b < 4; b++) {
        const at = 1 + Math.floor(r() * 63_998);
        blocks.push([at, at + 1]);
      }
      big.onAck(0, blocks, 64_000);
      expect(big.size).toBeLessThanOrEqual(1000);
    }
    checkInvariants(big, 0, 64_000, 11);
    big.markLostByDupThresh();
    checkInvariants(big, 0, 64_000, 11);
  });

  it('[sack.scoreboard-property] random sends, retransmissions, SACKs (valid and hostile), losses and ACKs: the counters match a recount and IsLost matches its definition (seeded)', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const r = seededRandom(seed);
      const isn = Math.floor(r() * 2 ** 32) >>> 0;
      const sb = new Scoreboard(seed % 3 === 0 ? 16 : 4096, MSS);
      let una = isn;
      let sndMax = isn;
      let now = 0;
      for (let step = 0; step < 300; step++) {
        now += 1;
        const op = r();
        if (op < 0.3) {
          const len = 1 + Math.floor(r() * MSS);
          sb.onSend(sndMax, len, now);
          sndMax = seqAdd(sndMax, len);
        } else if (op < 0.4) {
          const lost = sb.nextLost();
          if (lost) sb.onSend(lost.start, Math.min(MSS, seqSub(lost.end, lost.start)), now);
        } else if (op < 0.75) {
          const flight = seqSub(sndMax, una);
          const blocks: Array<[number, number]> = [];
          const n = Math.floor(r() * 5);
          for (let b = 0; b < n; b++) {
            const a = seqAdd(una, Math.floor(r() * (flight + 200)) - 100);
            blocks.push(r() < 0.1 ? [Math.floor(r() * 2 ** 32), Math.floor(r() * 2 ** 32)] : [a, seqAdd(a, Math.floor(r() * 400) - 50)]);
          }
          const ackTo = r() < 0.2 ? seqAdd(una, Math.floor(r() * (flight + 1))) : una;
          una = ackTo;
          sb.onAck(una, blocks, sndMax);
          sb.markLostByDupThresh();
          // Every un-SACKed record that qualifies by RFC 6675's definition is marked lost.
          for (const x of sb.records()) if (!x.sacked && !x.lost && isLostByDefinition(sb, x)) expect.fail(`seed ${seed}: ${x.start} should be lost`);
        } else if (op < 0.8) {
          sb.markAllLost();
        } else {
          const recs = [...sb.records()];
          if (recs.length > 0) sb.markLost(recs[Math.floor(r() * recs.length)]!);
        }
        checkInvariants(sb, una, sndMax, seed);
        if (seqLeq(sndMax, una)) expect(sb.size, `seed ${seed}`).toBe(0);
      }
    }
  });
});

describe('SACK blocks the receiver sends (RFC 2018 §4, RFC 2883)', () => {
  it('[sack.receiver-blocks] the most recent range first, at most the room allows; a D-SACK goes first once, followed by the range that holds it (RFC 2018 §4, RFC 2883 §4)', () => {
    const rep = new SackReporter();
    const ranges: Array<[number, number]> = [[500, 600], [300, 400], [700, 800], [900, 950]];
    expect(rep.blocks(ranges, 3)).toEqual([[500, 600], [300, 400], [700, 800]]);
    expect(rep.blocks(ranges, 4)).toEqual(ranges);
    // A duplicate below RCV.NXT.
    rep.duplicate(100, 200);
    expect(rep.blocks(ranges, 3)).toEqual([[100, 200], [500, 600], [300, 400]]);
    expect(rep.blocks(ranges, 3)).toEqual([[500, 600], [300, 400], [700, 800]]); // reported once
    // A duplicate of data held out of order: its range comes second.
    rep.duplicate(720, 760);
    expect(rep.blocks(ranges, 4)).toEqual([[720, 760], [700, 800], [500, 600], [300, 400]]);
    // Wrapping sequence numbers.
    rep.duplicate(0xfffffff0, 0x10);
    expect(rep.blocks([[0xffffffe0, 0x20]], 3)).toEqual([[0xfffffff0, 0x10], [0xffffffe0, 0x20]]);
    rep.duplicate(5, 5); // empty: nothing to report
    expect(rep.blocks([], 3)).toEqual([]);
  });
});
