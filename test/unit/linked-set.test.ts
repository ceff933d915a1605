/**
 * LinkedSet (src/runtime/linked-set.ts): the insertion-ordered set whose members carry their own
 * links. It behaves as a Set of the members does — oldest first, O(1) add/delete/oldest — and a
 * member that left holds no pointers (so it keeps nothing alive).
 */
import { describe, expect, it } from 'vitest';
import { LinkedSet, SetLink } from '../../src/runtime/linked-set.js';
import { seededRandom } from '../../src/runtime/random.js';

class Member {
  readonly link = new SetLink<Member>(this);
  constructor(readonly id: number) {}
}

describe('LinkedSet', () => {
  it('keeps members oldest first; adding a member twice keeps its place; deleting a stranger does nothing', () => {
    const s = new LinkedSet<Member>();
    const [a, b, c] = [new Member(1), new Member(2), new Member(3)];
    s.add(a.link);
    s.add(b.link);
    s.add(c.link);
    s.add(a.link);
    expect([...s].map((m) => m.id)).toEqual([1, 2, 3]);
    expect(s.oldest()).toBe(a);
    expect(s.delete(b.link)).toBe(true);
    expect(s.delete(b.link)).toBe(false);
    expect([...s].map((m) => m.id)).toEqual([1, 3]);
    expect([s.size, s.has(a.link), s.has(b.link)]).toEqual([2, true, false]);
    s.delete(a.link);
    expect(s.oldest()).toBe(c);
    s.delete(c.link);
    expect([s.size, s.oldest(), [...s]]).toEqual([0, undefined, []]);
  });

  it('a member that left holds no links, and one set cannot take a member of another', () => {
    const s = new LinkedSet<Member>();
    const t = new LinkedSet<Member>();
    const [a, b, c] = [new Member(1), new Member(2), new Member(3)];
    for (const m of [a, b, c]) s.add(m.link);
    s.delete(b.link);
    expect([b.link.prev, b.link.next, b.link.owner]).toEqual([undefined, undefined, undefined]);
    expect(() => t.add(a.link)).toThrow(/another set/);
    t.add(b.link);
    expect([...t]).toEqual([b]);
  });

  it('iteration survives deleting the member just yielded (closing every connection in a loop)', () => {
    const s = new LinkedSet<Member>();
    const ms = Array.from({ length: 5 }, (_, i) => new Member(i));
    for (const m of ms) s.add(m.link);
    const seen: number[] = [];
    for (const m of s) {
      seen.push(m.id);
      s.delete(m.link);
    }
    expect([seen, s.size]).toEqual([[0, 1, 2, 3, 4], 0]);
  });

  it('agrees with a Set through random adds and deletes (100 seeds)', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const rand = seededRandom(seed);
      const ms = Array.from({ length: 20 }, (_, i) => new Member(i));
      const s = new LinkedSet<Member>();
      const model = new Set<Member>();
      for (let i = 0; i < 300; i++) {
        const m = ms[Math.floor(rand() * ms.length)]!;
        if (rand() < 0.55) {
          s.add(m.link);
          model.add(m);
        } else {
          expect(s.delete(m.link), `seed ${seed} op ${i}`).toBe(model.delete(m));
        }
        expect(s.size).toBe(model.size);
      }
      expect([...s], `seed ${seed}`).toEqual([...model]);
      expect(s.oldest()).toBe(model.values().next().value);
    }
  });
});
