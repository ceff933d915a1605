/**
 * RACK's reordering window after D-SACKs (RFC 8985 §6.2 step 4): each D-SACK round raises the
 * multiplier of reo_wnd (min_RTT/4 × RACK.reo_wnd_mult), and the raised value holds for the next
 * 16 loss recoveries (RACK.reo_wnd_persist), then falls back to 1. A new D-SACK restarts the count.
 */
import { describe, expect, it } from 'vitest';
import { Rack } from '../../src/tcp/rack.js';
import { Scoreboard } from '../../src/tcp/sack.js';

const MSS = 100;
const MIN_RTT = 40; // every case below: min_RTT 40, so one unit of reo_wnd is 10 ms
const SRTT = 1000; // large: the cap at SRTT never hides the multiplier here

/** A Rack that has seen reordering and measured an RTT of 40 ms. */
function reorderedRack(): Rack {
  const sb = new Scoreboard(undefined, MSS);
  for (let i = 0; i < 4; i++) sb.onSend(i * MSS, MSS, i);
  const rack = new Rack();
  // Segment 2 is SACKed first (RTT 40 from its send at 2), then segment 1, sent earlier and never
  // retransmitted: delivered below the highest delivered sequence, so it was reordered.
  for (const r of sb.onAck(0, [[200, 300]], 400).delivered) rack.onDelivered(r, 42);
  for (const r of sb.onAck(0, [[100, 300]], 400).delivered) rack.onDelivered(r, 43);
  expect(rack.reorderingSeen).toBe(true);
  expect(rack.minRtt).toBe(MIN_RTT);
  return rack;
}

const reo = (rack: Rack) => rack.reoWnd(false, 0, SRTT);

describe('RACK reordering window after D-SACK (RFC 8985 §6.2 step 4)', () => {
  it('starts at min_RTT/4 and each D-SACK round raises it by one more min_RTT/4', () => {
    const rack = reorderedRack();
    expect(reo(rack)).toBe(10);
    rack.onDsack(0, 500);
    expect(reo(rack)).toBe(20);
    rack.onDsack(500, 900);
    expect(reo(rack)).toBe(30);
  });

  it('the raised window holds for 15 recoveries and falls back to min_RTT/4 at the 16th', () => {
    const rack = reorderedRack();
    rack.onDsack(0, 500);
    rack.onDsack(500, 900);
    for (let i = 1; i <= 15; i++) {
      rack.onRecoveryEnd();
      expect(reo(rack), `after recovery ${i}`).toBe(30);
    }
    rack.onRecoveryEnd();
    expect(reo(rack)).toBe(10);
    // Further recoveries change nothing: the multiplier stays 1.
    rack.onRecoveryEnd();
    expect(reo(rack)).toBe(10);
  });

  it('recoveries without any D-SACK never change the window', () => {
    const rack = reorderedRack();
    for (let i = 0; i < 20; i++) rack.onRecoveryEnd();
    expect(reo(rack)).toBe(10);
  });

  it('a D-SACK in a later round restarts the count of 16 recoveries', () => {
    const rack = reorderedRack();
    rack.onDsack(0, 500);
    for (let i = 0; i < 10; i++) rack.onRecoveryEnd();
    expect(reo(rack)).toBe(20);
    rack.onDsack(500, 900); // a new round: the multiplier grows and the count starts again
    expect(reo(rack)).toBe(30);
    for (let i = 0; i < 15; i++) rack.onRecoveryEnd();
    expect(reo(rack)).toBe(30); // 25 recoveries after the first D-SACK, 15 after the last
    rack.onRecoveryEnd();
    expect(reo(rack)).toBe(10);
  });

  it('the window is capped at SRTT however many D-SACK rounds raised it', () => {
    const rack = reorderedRack();
    for (let round = 0; round < 6; round++) rack.onDsack(round * 100, round * 100 + 100);
    expect(rack.reoWnd(false, 0, SRTT)).toBe(70);
    expect(rack.reoWnd(false, 0, 45)).toBe(45);
  });
});
