/**
 * Giving freed memory back to the system after a flood: the TCP budget says when its buffers
 * have fallen far below their high point, the stack then asks the link once, and the link waits
 * for the major GC that really frees them (src/runtime/after-gc.ts).
 */
import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../src/ip/addr.js';
import { MemoryLink } from '../../src/link/memory.js';
import { VirtualClock } from '../../src/runtime/clock.js';
import { afterMajorGcs, afterNextMajorGc } from '../../src/runtime/after-gc.js';
import { exposedGc } from '../../src/runtime/idle-memory.js';
import { seededRandom } from '../../src/runtime/random.js';
import { Stack } from '../../src/stack.js';
import { GIVE_BACK_MIN, MemoryBudget } from '../../src/tcp/memory.js';

const MiB = 1024 * 1024;

describe('the TCP budget says when freed buffers are worth giving back', () => {
  it('once each time the buffers fall from a high point of at least 16 MiB to under a quarter of it', () => {
    const m = new MemoryBudget();
    m.charge(GIVE_BACK_MIN - 1);
    m.charge(-(GIVE_BACK_MIN - 1));
    expect(m.shouldGiveBack()).toBe(false); // a small high point: not worth a trim

    m.charge(20 * MiB);
    expect(m.shouldGiveBack()).toBe(false); // still high
    m.charge(-14 * MiB); // 6 MiB: more than a quarter of 20
    expect(m.shouldGiveBack()).toBe(false);
    m.charge(-1 * MiB); // 5 MiB: a quarter, exactly
    expect(m.shouldGiveBack()).toBe(true);
    expect(m.shouldGiveBack()).toBe(false); // once per fall
    m.charge(-5 * MiB);
    expect(m.shouldGiveBack()).toBe(false); // the fall from 5 MiB is small

    m.charge(32 * MiB); // the next flood
    m.charge(-32 * MiB);
    expect(m.shouldGiveBack()).toBe(true);
  });
});

describe('the stack asks its link to give the memory back', () => {
  it('after the fall, once, and never a link that cannot (MemoryLink without the hook)', async () => {
    const clock = new VirtualClock(1_000_000);
    const [linkA, linkB] = MemoryLink.pair(clock, 1500);
    let asked = 0;
    const withHook = Object.assign(linkB, { releaseFreedMemory: () => void asked++ });
    const a = new Stack({ link: linkA, addr: parseIpv4('10.0.0.1')!, clock, random: seededRandom(1) });
    const b = new Stack({ link: withHook, addr: parseIpv4('10.0.0.2')!, clock, random: seededRandom(2) });
    // Any packet makes the stack process a batch (a SYN to a closed port: B answers RST).
    const send = async () => {
      a.connect({ host: '10.0.0.2', port: 9 }).on('error', () => {});
      await clock.sleep(1);
    };

    b.tcp.memory.charge(24 * MiB); // as a flood of unread data would
    await send();
    expect(asked).toBe(0);
    b.tcp.memory.charge(-24 * MiB); // the flood's connections were reset
    await send();
    expect(asked).toBe(1);
    await send();
    expect(asked).toBe(1);
    expect(b.stats()['stack.memory.give-back']).toBe(1);

    a.tcp.memory.charge(24 * MiB);
    a.tcp.memory.charge(-24 * MiB);
    await send(); // A processes packets too, and has nothing to ask
    expect(a.stats()['stack.memory.give-back']).toBe(0);
    expect(asked).toBe(1);
    a.close();
    b.close();
  });
});

describe('afterNextMajorGc', () => {
  it('runs its function once, after the next mark-compact (not after a scavenge), and not again', async () => {
    const gc = exposedGc();
    let runs = 0;
    afterNextMajorGc(() => runs++);
    expect(runs).toBe(0);
    gc({ type: 'minor' }); // a scavenge frees no old-generation buffers: not yet
    await new Promise((r) => setTimeout(r, 50));
    expect(runs).toBe(0);
    gc(); // a full (major) collection
    for (let i = 0; i < 100 && runs === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(runs).toBe(1);
    gc();
    await new Promise((r) => setTimeout(r, 50));
    expect(runs).toBe(1);
  });
});

describe('afterMajorGcs', () => {
  it('runs its function after each of the next n mark-compacts, then stops', async () => {
    const gc = exposedGc();
    let runs = 0;
    afterMajorGcs(3, () => runs++);
    for (let round = 1; round <= 5; round++) {
      gc();
      const want = Math.min(round, 3);
      for (let i = 0; i < 100 && runs < want; i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 20)); // and nothing more arrives
      expect(runs, `after major GC ${round}`).toBe(want);
    }
  });
});
