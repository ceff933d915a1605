/**
 * FreshMap (src/runtime/fresh-map.ts): a Map for keys that come and go forever. It answers as a
 * Map does, and what left it dies young: after a full GC, objects passing through a FreshMap of
 * 50 entries are not promoted to the old generation, where through a plain Map every one of them
 * is (V8 links each rehashed table to its successor).
 */
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { FreshMap } from '../../src/runtime/fresh-map.js';
import { exposedGc } from '../../src/runtime/idle-memory.js';
import { seededRandom } from '../../src/runtime/random.js';

const oldSpaceUsed = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;

describe('FreshMap', () => {
  it('agrees with a Map through random sets and deletes, across many copies (30 seeds)', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rand = seededRandom(seed);
      const m = new FreshMap<number, number>();
      const model = new Map<number, number>();
      for (let i = 0; i < 2500; i++) {
        const k = Math.floor(rand() * 40);
        if (rand() < 0.5) {
          m.set(k, i);
          model.set(k, i);
        } else expect(m.delete(k), `seed ${seed} op ${i}`).toBe(model.delete(k));
        expect(m.size).toBe(model.size);
      }
      expect([...m], `seed ${seed}`).toEqual([...model]);
      for (let k = 0; k < 40; k++) expect([m.has(k), m.get(k)]).toEqual([model.has(k), model.get(k)]);
      expect([...m.keys()]).toEqual([...model.keys()]);
      expect([...m.values()]).toEqual([...model.values()]);
    }
  });

  it('a loop that deletes what it iterates sees every entry once', () => {
    const m = new FreshMap<number, string>();
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 600; i++) m.set(round * 1000 + i, `v${i}`);
      const seen: number[] = [];
      for (const [k] of m) {
        seen.push(k);
        m.delete(k);
      }
      expect([seen.length, new Set(seen).size, m.size]).toEqual([600, 600, 0]);
    }
  });

  const churn = (map: { set(k: number, v: object): unknown; delete(k: number): boolean }, n: number): void => {
    for (let i = 0; i < n; i++) {
      map.set(i, { id: i, parts: [i, i + 1, i + 2, i + 3] });
      if (i >= 50) map.delete(i - 50);
    }
  };

  it('what left it is collected young: after a full GC, 100,000 objects through it promote under 20 bytes each (a Map: ~100)', () => {
    const gc = exposedGc();
    const grow = (map: { set(k: number, v: object): unknown; delete(k: number): boolean }): number => {
      churn(map, 20_000); // warm up (compiled code lives in the old generation too)
      gc();
      const before = oldSpaceUsed();
      churn(map, 100_000);
      gc({ type: 'minor' });
      gc({ type: 'minor' });
      return (oldSpaceUsed() - before) / 100_000;
    };
    const plain = grow(new Map<number, object>());
    const fresh = grow(new FreshMap<number, object>());
    expect(fresh, `FreshMap ${fresh.toFixed(1)} B per object, Map ${plain.toFixed(1)}`).toBeLessThan(20);
    expect(plain, `Map ${plain.toFixed(1)} B per object: the trap this guards against no longer springs`).toBeGreaterThan(50);
  });
});
