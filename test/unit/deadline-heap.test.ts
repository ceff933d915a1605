/**
 * The indexed deadline heap (src/runtime/deadline-heap.ts) against a plain sorted list: random
 * sequences of set (insert or move, earlier or later), remove and pop, many seeds. The heap must
 * always agree with the list on the earliest deadline, hold each item once, and keep every
 * item's heapIndex true.
 */
import { describe, expect, it } from 'vitest';
import { DeadlineHeap } from '../../src/runtime/deadline-heap.js';
import { seededRandom } from '../../src/runtime/random.js';

interface Item {
  id: number;
  heapIndex: number;
}

describe('deadline heap', () => {
  it('agrees with a sorted list through random sets, moves, removals and pops (seeded)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rand = seededRandom(seed);
      const heap = new DeadlineHeap<Item>();
      const items: Item[] = Array.from({ length: 1 + Math.floor(rand() * 40) }, (_, id) => ({ id, heapIndex: -1 }));
      const model = new Map<Item, number>(); // item -> deadline
      for (let step = 0; step < 300; step++) {
        const r = rand();
        const item = items[Math.floor(rand() * items.length)]!;
        if (r < 0.55) {
          const at = Math.floor(rand() * 100); // few distinct values: ties are common
          heap.set(at, item);
          model.set(item, at);
        } else if (r < 0.8) {
          heap.remove(item);
          model.delete(item);
        } else if (model.size > 0) {
          const earliest = Math.min(...model.values());
          expect(heap.nextAt, `seed ${seed} step ${step}`).toBe(earliest);
          const popped = heap.pop();
          expect(model.get(popped), `seed ${seed} step ${step}`).toBe(earliest);
          model.delete(popped);
        }
        if (heap.size !== model.size || heap.nextAt !== (model.size > 0 ? Math.min(...model.values()) : Infinity)) {
          expect.fail(`seed ${seed} step ${step}: size ${heap.size} next ${heap.nextAt}, expected ${model.size} ${Math.min(...model.values())}`);
        }
        const wrong = items.filter((it) => heap.deadlineOf(it) !== (model.get(it) ?? Infinity) || it.heapIndex >= 0 !== model.has(it));
        if (wrong.length > 0) expect.fail(`seed ${seed} step ${step}: items ${wrong.map((it) => it.id).join(', ')} are filed wrongly`);
      }
      // Drain: deadlines come out in order.
      const out: number[] = [];
      while (heap.size > 0) {
        out.push(heap.nextAt);
        heap.pop();
      }
      expect(out, `seed ${seed}`).toEqual([...out].sort((a, b) => a - b));
      expect(items.every((it) => it.heapIndex === -1), `seed ${seed}`).toBe(true);
    }
  });
});
