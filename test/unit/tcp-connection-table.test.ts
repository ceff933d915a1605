/**
 * The layer's connection table (src/tcp/conntable.ts): one entry per 4-tuple, found by exact
 * (local port, remote address, remote port), whatever the numbers — tuples that would collide
 * under a careless numeric key stay apart — and a connection is removed only by itself, not by
 * an older incarnation of its tuple (RFC 9293 §3.4: a new connection may reuse a tuple).
 */
import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../src/ip/addr.js';
import { seededRandom } from '../../src/runtime/random.js';
import { ConnectionTable, tupleHash } from '../../src/tcp/conntable.js';

const tuple = (addr: string, remotePort: number, localPort = 80) => ({ remoteAddr: parseIpv4(addr)!, remotePort, localPort });

describe('the connection table', () => {
  it('keeps tuples apart that differ in one field, including addresses 65536 apart with ports 1 apart', () => {
    const t = new ConnectionTable<ReturnType<typeof tuple>>();
    const all = [
      tuple('10.0.1.2', 40001),
      tuple('10.1.1.2', 40000), // 65536 addresses above, one port below
      tuple('10.0.1.2', 40000),
      tuple('10.0.1.2', 40001, 81),
      tuple('255.255.255.255', 65535),
      tuple('0.0.0.0', 0),
      tuple('0.0.0.1', 0),
      tuple('0.0.0.0', 65535),
    ];
    for (const c of all) t.set(c);
    expect(t.size).toBe(all.length);
    for (const c of all) expect(t.get(c.remoteAddr, c.remotePort, c.localPort)).toBe(c);
    expect(new Set(t.values())).toEqual(new Set(all));
    expect(t.has(parseIpv4('10.1.1.2')!, 40001, 80)).toBe(false);
  });

  it('set() on a tuple already held replaces its connection without counting it twice', () => {
    const t = new ConnectionTable<ReturnType<typeof tuple>>();
    const old = tuple('10.0.0.9', 5000);
    const fresh = tuple('10.0.0.9', 5000);
    t.set(old);
    t.set(fresh);
    expect(t.size).toBe(1);
    expect(t.get(old.remoteAddr, 5000, 80)).toBe(fresh);
  });

  it('delete() removes a connection only if it is the one filed under its tuple', () => {
    const t = new ConnectionTable<ReturnType<typeof tuple>>();
    const old = tuple('10.0.0.9', 5000);
    const fresh = tuple('10.0.0.9', 5000);
    const other = tuple('10.0.0.9', 5001);
    t.set(old);
    t.set(fresh);
    t.set(other);
    t.delete(old); // an older incarnation: the newer one stays
    expect(t.size).toBe(2);
    expect(t.get(old.remoteAddr, 5000, 80)).toBe(fresh);
    t.delete(tuple('10.0.0.9', 5000, 99)); // a local port the table never saw
    expect(t.size).toBe(2);
    t.delete(fresh);
    t.delete(fresh); // twice: nothing more to remove
    expect(t.size).toBe(1);
    t.delete(other);
    expect(t.size).toBe(0);
    expect([...t.values()]).toEqual([]);
    // Emptied, the table files a tuple again as new.
    t.set(fresh);
    expect([t.size, t.get(fresh.remoteAddr, 5000, 80)]).toEqual([1, fresh]);
  });

  it('two peers on one local port are kept apart, and either incarnation leaves only by itself', () => {
    const t = new ConnectionTable<ReturnType<typeof tuple>>();
    const a = tuple('10.0.0.9', 80, 50000);
    const b = tuple('10.0.0.8', 80, 50000); // the same local port, another peer
    t.set(a);
    expect([t.get(a.remoteAddr, 80, 50000), t.get(b.remoteAddr, 80, 50000), t.get(a.remoteAddr, 81, 50000)]).toEqual([a, undefined, undefined]);
    t.delete(b); // not filed: nothing happens
    expect(t.size).toBe(1);
    const a2 = tuple('10.0.0.9', 80, 50000);
    t.set(a2); // the same tuple again: replaced, not counted twice
    expect([t.size, t.get(a.remoteAddr, 80, 50000)]).toEqual([1, a2]);
    t.delete(a); // the older incarnation: the newer one stays
    expect(t.get(a.remoteAddr, 80, 50000)).toBe(a2);
    t.set(b);
    expect([t.size, t.get(a.remoteAddr, 80, 50000), t.get(b.remoteAddr, 80, 50000)]).toEqual([2, a2, b]);
    t.delete(a2);
    expect([t.size, t.get(a.remoteAddr, 80, 50000), t.get(b.remoteAddr, 80, 50000)]).toEqual([1, undefined, b]);
    expect([...t.values()]).toEqual([b]);
    t.delete(b);
    expect([t.size, [...t.values()]]).toEqual([0, []]);
  });

  it('finds an address at or above 128.0.0.0 in its signed form too', () => {
    const t = new ConnectionTable<ReturnType<typeof tuple>>();
    const alone = tuple('192.168.1.9', 443, 50001);
    const shared = [tuple('192.168.1.9', 443, 80), tuple('203.0.113.7', 443, 80)];
    for (const c of [alone, ...shared]) t.set(c);
    for (const c of [alone, ...shared]) expect(t.get(c.remoteAddr | 0, c.remotePort, c.localPort)).toBe(c);
    t.set({ ...alone, remoteAddr: alone.remoteAddr | 0 }); // the same tuple, written signed: replaced
    expect(t.size).toBe(3);
  });
});

describe('the connection table against a Map, many seeds', () => {
  it('agrees with a Map keyed by the tuple through random inserts, replacements and deletes (growing and shrinking)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rand = seededRandom(seed);
      const t = new ConnectionTable<ReturnType<typeof tuple>>(seed * 0x9e3779b1);
      const model = new Map<string, ReturnType<typeof tuple>>();
      const key = (c: ReturnType<typeof tuple>) => `${c.remoteAddr >>> 0}:${c.remotePort}:${c.localPort}`;
      // Few distinct values per field: many tuples share a hash run, and inserts hit held tuples.
      const pick = () => tuple(`10.0.0.${1 + Math.floor(rand() * 4)}`, 40000 + Math.floor(rand() * 40), 80 + Math.floor(rand() * 3));
      const ops = 400 + Math.floor(rand() * 1200);
      for (let i = 0; i < ops; i++) {
        const r = rand();
        // Phases: mostly inserting first (the table grows), mostly deleting later (it shrinks).
        const insert = i < ops / 2 ? r < 0.7 : r < 0.3;
        if (insert) {
          const c = pick();
          t.set(c);
          model.set(key(c), c);
        } else {
          const held = [...model.values()];
          // Deleting a held one, or a same-tuple stranger (which must not remove it).
          const c = held.length > 0 && rand() < 0.8 ? held[Math.floor(rand() * held.length)]! : pick();
          t.delete(c);
          if (model.get(key(c)) === c) model.delete(key(c));
        }
        expect(t.size, `seed ${seed} op ${i}`).toBe(model.size);
      }
      for (const c of model.values()) expect(t.get(c.remoteAddr, c.remotePort, c.localPort), `seed ${seed}`).toBe(c);
      for (let i = 0; i < 50; i++) {
        const c = pick();
        expect(t.get(c.remoteAddr, c.remotePort, c.localPort), `seed ${seed}`).toBe(model.get(key(c)));
      }
      expect(new Set(t.values()), `seed ${seed}`).toEqual(new Set(model.values()));
    }
  });

  it('spreads the tuples one peer can choose (every port of one address) over the slots, keyed by its secret', () => {
    const spread = (secret: number) => {
      const used = new Set<number>();
      for (let port = 0; port < 4096; port++) used.add(tupleHash(secret, parseIpv4('198.51.100.7')!, port, 80) & 8191);
      return used.size;
    };
    // 4096 keys into 8192 slots at random fill ~3,200 distinct slots; a bad hash fills far fewer.
    expect(spread(1)).toBeGreaterThan(3000);
    expect(spread(0x12345678)).toBeGreaterThan(3000);
    expect(tupleHash(1, parseIpv4('198.51.100.7')!, 1000, 80)).not.toBe(tupleHash(2, parseIpv4('198.51.100.7')!, 1000, 80));
  });
});
