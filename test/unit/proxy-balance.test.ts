/**
 * The load-balancing methods, checked against nginx's documented and coded behaviour:
 * sequences, stickiness, failure windows, backups and the consistent-hash ring.
 */
import { describe, expect, it } from 'vitest';
import { Balancer } from '../../src/proxy/balance/balancer.js';
import type { BalanceMethod } from '../../src/proxy/balance/balancer.js';
import { buildRing, findPoint } from '../../src/proxy/balance/chash.js';
import { crc32 } from '../../src/proxy/balance/crc32.js';
import { ipHashStep } from '../../src/proxy/balance/ip-hash.js';
import type { Peer, PeerConfig } from '../../src/proxy/balance/peer.js';
import { parseIpv4 } from '../../src/ip/addr.js';

function server(name: string, extra: Partial<PeerConfig> = {}): PeerConfig {
  const [host, port] = name.includes(':') ? name.split(':') : [name, '80'];
  return { name, host: host!, port: Number(port), weight: 1, maxFails: 1, failTimeoutMs: 10_000, backup: false, down: false, ...extra };
}

/** Pick-and-release `n` times (each request finishes before the next starts); the names chosen. */
function sequence(b: Balancer, n: number, opts: { now?: number; key?: (i: number) => string; client?: string } = {}): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const picker = b.start({ clientAddr: parseIpv4(opts.client ?? '10.0.0.1')!, key: opts.key?.(i) ?? '/' });
    const p = picker.next(opts.now ?? 1000);
    if (!p) {
      out.push('-');
      continue;
    }
    out.push(p.name);
    b.release(p, false, opts.now ?? 1000);
  }
  return out;
}

function counts(names: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of names) c[n] = (c[n] ?? 0) + 1;
  return c;
}

describe('smooth weighted round robin (nginx)', () => {
  it('weights 5,1,1 give a a b a c a a, and the same again', () => {
    const b = new Balancer('round-robin', [server('a', { weight: 5 }), server('b'), server('c')]);
    expect(sequence(b, 14).join(' ')).toBe('a a b a c a a a a b a c a a');
  });

  it('equal weights rotate in order', () => {
    const b = new Balancer('round-robin', [server('a'), server('b'), server('c')]);
    expect(sequence(b, 7).join(' ')).toBe('a b c a b c a');
  });

  it('weights 3:1:1 over 3,000 requests split exactly 1800/600/600', () => {
    const b = new Balancer('round-robin', [server('a', { weight: 3 }), server('b'), server('c')]);
    expect(counts(sequence(b, 3000))).toEqual({ a: 1800, b: 600, c: 600 });
  });

  it('a server marked down is never chosen', () => {
    const b = new Balancer('round-robin', [server('a'), server('b', { down: true }), server('c')]);
    expect(sequence(b, 4).join(' ')).toBe('a c a c');
  });
});

describe('passive health checks (max_fails, fail_timeout)', () => {
  it('a failure takes a max_fails=1 server out for fail_timeout; the probe after that brings it back', () => {
    const b = new Balancer('round-robin', [server('a'), server('b')]);
    const a = b.all[0]!;
    const first = b.start({ clientAddr: 0, key: '' });
    expect(first.next(1000)!.name).toBe('a');
    b.release(a, true, 1000);
    // Inside the window: only b.
    expect(sequence(b, 3, { now: 5000 }).join(' ')).toBe('b b b');
    expect(sequence(b, 2, { now: 11_000 }).join(' ')).toBe('b b'); // 10 s after: still inside (<=)
    // After the window, a is tried again; its success clears the failure.
    expect(sequence(b, 4, { now: 11_001 })).toContain('a');
    expect(a.fails).toBe(0);
  });

  it('max_fails=2 needs two failures inside the window, and a success inside the window does not reset the count', () => {
    const b = new Balancer('round-robin', [server('a', { maxFails: 2 }), server('b', { maxFails: 2 })]);
    const a = b.all[0]!;
    const pickA = (now: number) => {
      const picker = b.start({ clientAddr: 0, key: '' });
      for (let i = 0; i < 2; i++) {
        const p = picker.next(now)!;
        if (p === a) return p;
        b.release(p, false, now);
      }
      throw new Error('a was not offered');
    };
    b.release(pickA(1000), true, 1000);
    expect(a.fails).toBe(1);
    b.release(pickA(2000), false, 2000); // success inside the window: the failure still counts
    expect(a.fails).toBe(1);
    b.release(pickA(3000), true, 3000);
    expect(a.fails).toBe(2);
    expect(sequence(b, 3, { now: 4000 }).join(' ')).toBe('b b b');
  });

  it('a failure lowers the effective weight by weight/max_fails, and it climbs back one step per pick', () => {
    const b = new Balancer('round-robin', [server('a', { weight: 4, maxFails: 2 }), server('b', { weight: 4, maxFails: 2 })]);
    const a = b.all[0]!;
    const picker = b.start({ clientAddr: 0, key: '' });
    const p = picker.next(1000)!;
    expect(p).toBe(a);
    b.release(p, true, 1000);
    expect(a.effectiveWeight).toBe(2);
    sequence(b, 1, { now: 1500 });
    expect(a.effectiveWeight).toBe(3);
  });

  it('max_fails=0 never takes a server out', () => {
    const b = new Balancer('round-robin', [server('a', { maxFails: 0 }), server('b', { maxFails: 0 })]);
    for (let i = 0; i < 5; i++) b.release(b.start({ clientAddr: 0, key: '' }).next(1000)!, true, 1000);
    expect(sequence(b, 4, { now: 1001 }).sort().join(' ')).toBe('a a b b');
  });

  it('one server without backups is never marked failed (nginx: nowhere else to go)', () => {
    const b = new Balancer('round-robin', [server('a')]);
    const p = b.start({ clientAddr: 0, key: '' }).next(1000)!;
    b.release(p, true, 1000);
    expect(sequence(b, 2, { now: 1001 }).join(' ')).toBe('a a');
  });

  it('a request tries each server at most once, then has none left', () => {
    const b = new Balancer('round-robin', [server('a'), server('b'), server('c')]);
    expect(b.maxTries).toBe(3);
    const picker = b.start({ clientAddr: 0, key: '' });
    const seen = [picker.next(1000), picker.next(1000), picker.next(1000)].map((p) => p!.name);
    expect(seen.sort().join(' ')).toBe('a b c');
    expect(picker.next(1000)).toBeUndefined();
  });
});

describe('backup servers', () => {
  it('are used only while every primary is down, and primaries return after fail_timeout', () => {
    const b = new Balancer('round-robin', [server('a'), server('b'), server('z', { backup: true })]);
    expect(sequence(b, 4).join(' ')).toBe('a b a b');
    for (const p of b.peers.primary) {
      const picker = b.start({ clientAddr: 0, key: '' });
      const got = picker.next(2000)!;
      b.release(got, true, 2000);
    }
    expect(sequence(b, 3, { now: 3000 }).join(' ')).toBe('z z z');
    expect(sequence(b, 4, { now: 12_001 }).join(' ')).not.toContain('z');
  });

  it('a request whose primaries all fail moves on to the backup', () => {
    const b = new Balancer('round-robin', [server('a'), server('b'), server('z', { backup: true })]);
    const picker = b.start({ clientAddr: 0, key: '' });
    const tried: string[] = [];
    for (let p = picker.next(1000); p; p = picker.next(1000)) {
      tried.push(p.name);
      b.release(p, true, 1000);
    }
    expect(tried.join(' ')).toBe('a b z');
  });
});

describe('least_conn (nginx)', () => {
  it('chooses the server with the fewest requests in progress', () => {
    const b = new Balancer('least-conn', [server('a'), server('b'), server('c')]);
    const held: Peer[] = [];
    // Three long requests: one each; then the next goes where one has finished.
    for (let i = 0; i < 3; i++) held.push(b.start({ clientAddr: 0, key: '' }).next(1000)!);
    expect(held.map((p) => p.name).join(' ')).toBe('a b c');
    b.release(held[1]!, false, 1000);
    expect(b.start({ clientAddr: 0, key: '' }).next(1000)!.name).toBe('b');
  });

  it('compares requests relative to weight', () => {
    const b = new Balancer('least-conn', [server('a', { weight: 2 }), server('b')]);
    const [a, bb] = b.all as [Peer, Peer];
    a.conns = 1;
    bb.conns = 1;
    expect(b.start({ clientAddr: 0, key: '' }).next(1000)).toBe(a); // 1/2 < 1/1
    a.conns = 3;
    bb.conns = 1;
    expect(b.start({ clientAddr: 0, key: '' }).next(1000)).toBe(bb); // 1/1 < 3/2... b has 1 → 2 now
  });

  it('breaks ties by smooth weighted round robin', () => {
    const lc = new Balancer('least-conn', [server('a', { weight: 5 }), server('b'), server('c')]);
    expect(sequence(lc, 7).join(' ')).toBe('a a b a c a a');
  });

  it('steers away from a slow server: requests pile up there, new ones go elsewhere', () => {
    const b = new Balancer('least-conn', [server('a'), server('b'), server('c')]);
    const slow = b.all[0]!;
    const names: string[] = [];
    // Every request to a stays open; those to b and c finish at once.
    for (let i = 0; i < 30; i++) {
      const p = b.start({ clientAddr: 0, key: '' }).next(1000)!;
      names.push(p.name);
      if (p !== slow) b.release(p, false, 1000);
    }
    expect(counts(names)['a']).toBe(1);
  });
});

describe('ip_hash (nginx)', () => {
  it('hashes the first three octets as nginx: 10.77.0.x → hash 4995, 192.168.1.x → hash 154', () => {
    // By hand: h = 89; h = (h*113 + octet) % 6271 for 10, 77, 0 → 3796, 2597, 4995.
    expect(ipHashStep(89, parseIpv4('10.77.0.200')!)).toBe(4995);
    expect(ipHashStep(89, parseIpv4('192.168.1.7')!)).toBe(154);
    const b = new Balancer('ip-hash', [server('a'), server('b'), server('c')]);
    // 4995 % 3 = 0 → a; 154 % 3 = 1 → b.
    expect(sequence(b, 5, { client: '10.77.0.9' }).join(' ')).toBe('a a a a a');
    expect(sequence(b, 5, { client: '192.168.1.250' }).join(' ')).toBe('b b b b b');
  });

  it('keeps every address of a /24 on one server, and spreads /24s over all servers', () => {
    const b = new Balancer('ip-hash', [server('a'), server('b'), server('c')]);
    const perNet = new Map<string, Set<string>>();
    for (let net = 0; net < 60; net++) {
      for (let host = 1; host < 255; host += 17) {
        const client = `10.${net}.${net * 3}.${host}`;
        const [name] = sequence(b, 1, { client });
        const key = `10.${net}.${net * 3}`;
        if (!perNet.has(key)) perNet.set(key, new Set());
        perNet.get(key)!.add(name!);
      }
    }
    const used = new Set<string>();
    for (const names of perNet.values()) {
      expect(names.size).toBe(1);
      used.add([...names][0]!);
    }
    expect([...used].sort().join(' ')).toBe('a b c');
  });

  it('rehashes away from a down server, the same way every time', () => {
    const b = new Balancer('ip-hash', [server('a'), server('b'), server('c')]);
    b.all[0]!.down = true; // 10.77.0.x hashes to a
    const first = sequence(b, 1, { client: '10.77.0.1' })[0];
    expect(first).not.toBe('a');
    expect(sequence(b, 5, { client: '10.77.0.99' })).toEqual(Array(5).fill(first));
  });

  it('after 20 rehashes that all land on an unusable server, falls back to round robin', () => {
    // The hash lands on a (weight 1000 of 1001) nearly always; a is down.
    const b = new Balancer('ip-hash', [server('a', { weight: 1000, down: true }), server('b')]);
    const picker = b.start({ clientAddr: parseIpv4('10.77.0.1')!, key: '' });
    expect(picker.next(1000)!.name).toBe('b');
    expect(picker.ipHash.tries).toBe(21);
  });
});

describe('hash $request_uri consistent (ketama ring, nginx)', () => {
  it('crc32 is the standard one (check value of "123456789")', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it('puts 160 points per unit of weight on the ring, sorted', () => {
    const ring = buildRing([server('10.0.0.1:80', { weight: 2 }), server('10.0.0.2:80')]);
    expect(ring.hashes.length).toBe(480);
    for (let i = 1; i < ring.hashes.length; i++) expect(ring.hashes[i]!).toBeGreaterThan(ring.hashes[i - 1]!);
    expect(ring.names.filter((n) => n === '10.0.0.1:80').length).toBe(320);
    expect(findPoint(ring, 0)).toBe(0);
    expect(findPoint(ring, 0xffffffff)).toBeLessThanOrEqual(ring.hashes.length);
  });

  it('the same URI always lands on the same server', () => {
    const b = new Balancer('hash', [server('10.0.0.1:80'), server('10.0.0.2:80'), server('10.0.0.3:80')]);
    for (const uri of ['/a', '/b?x=1', '/c/d/e']) {
      const got = sequence(b, 10, { key: () => uri });
      expect(new Set(got).size).toBe(1);
    }
  });

  const keys = Array.from({ length: 10_000 }, (_, i) => `/item/${i}?v=${(i * 7919) % 1000}`);
  const assign = (names: string[]) => {
    const b = new Balancer('hash', names.map((n) => server(n)));
    return keys.map((k) => sequence(b, 1, { key: () => k })[0]!);
  };

  it('removing one of 4 servers moves only its keys: about 1/4 of them', () => {
    const four = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', '10.0.0.4:80'];
    const before = assign(four);
    const after = assign(four.slice(0, 3));
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== after[i]) {
        moved++;
        expect(before[i]).toBe('10.0.0.4:80'); // only the removed server's keys move
      }
    }
    expect(Math.abs(moved / keys.length - 0.25)).toBeLessThanOrEqual(0.05);
    // And the load is spread: each of the 4 has a fair share.
    for (const n of four) expect(before.filter((x) => x === n).length).toBeGreaterThan(1500);
  });

  it('adding a 4th server moves about 1/4 of the keys, all to the new server', () => {
    const three = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'];
    const before = assign(three);
    const after = assign([...three, '10.0.0.9:80']);
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== after[i]) {
        moved++;
        expect(after[i]).toBe('10.0.0.9:80');
      }
    }
    expect(Math.abs(moved / keys.length - 0.25)).toBeLessThanOrEqual(0.05);
  });

  it('a key whose server is down walks on to the next point', () => {
    const b = new Balancer('hash', [server('10.0.0.1:80'), server('10.0.0.2:80'), server('10.0.0.3:80')]);
    const owner = sequence(b, 1, { key: () => '/x' })[0]!;
    b.all.find((p) => p.name === owner)!.down = true;
    const next = sequence(b, 3, { key: () => '/x' });
    expect(next[0]).not.toBe(owner);
    expect(new Set(next).size).toBe(1);
  });
});

describe('every method', () => {
  it.each<BalanceMethod>(['round-robin', 'least-conn', 'ip-hash', 'hash'])('%s returns nothing when every server is down', (m) => {
    const b = new Balancer(m, [server('10.0.0.1:80', { down: true }), server('10.0.0.2:80', { down: true })]);
    expect(b.start({ clientAddr: 1, key: '/' }).next(1000)).toBeUndefined();
  });
});
