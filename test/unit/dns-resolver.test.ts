/**
 * The resolver's state machine on a virtual clock: what it sends, when it retries, what it
 * accepts and ignores, and how each lookup ends. The "network" is this test: it reads the
 * queries the resolver asks to send and answers (or not) by hand.
 */
import { describe, expect, it } from 'vitest';
import type { LookupOutcome, ResolverEvent, ResolverOptions, ResolverServer } from '../../src/dns/resolver.js';
import { ResolverCore } from '../../src/dns/resolver.js';
import type { DnsMessage, DnsRecord } from '../../src/dns/wire.js';
import { CLASS_IN, RCODE, TYPE, dnsMessage, parseDns, writeDns } from '../../src/dns/wire.js';
import { seededRandom } from '../../src/runtime/random.js';

const S1: ResolverServer = { address: '10.78.0.1', port: 53 };
const S2: ResolverServer = { address: '10.78.0.9', port: 53 };

interface Sent {
  transport: 'udp' | 'tcp';
  port: number;
  conn: number;
  to: ResolverServer;
  at: number;
  msg: DnsMessage;
}

function harness(opts: Partial<ResolverOptions> = {}, seed = 1) {
  let now = 0;
  const sent: Sent[] = [];
  const open = new Set<number>();
  const openedEver: number[] = [];
  const taken = new Set<number>(opts.servers ? [] : []);
  const outcomes = new Map<number, LookupOutcome>();
  const events: ResolverEvent[] = [];
  const conns = new Set<number>();
  const core = new ResolverCore(
    { servers: [S1], random: seededRandom(seed), ...opts },
    {
      openUdp: (port) => {
        if (taken.has(port) || open.has(port)) return undefined;
        open.add(port);
        openedEver.push(port);
        return port;
      },
      sendUdp: (port, to, bytes) => sent.push({ transport: 'udp', port, conn: 0, to, at: now, msg: parseDns(bytes) as DnsMessage }),
      closeUdp: (port) => open.delete(port),
      sendTcp: (conn, to, bytes) => {
        conns.add(conn);
        const len = (bytes[0]! << 8) | bytes[1]!;
        expect(len).toBe(bytes.length - 2);
        sent.push({ transport: 'tcp', port: 0, conn, to, at: now, msg: parseDns(bytes.subarray(2)) as DnsMessage });
      },
      closeTcp: (conn) => conns.delete(conn),
      done: (key, outcome) => outcomes.set(key, outcome),
      trace: (e) => events.push(e),
    },
  );
  /** Advance the clock, polling at every deadline on the way, like the Stack's timer. */
  const advance = (ms: number) => {
    const end = now + ms;
    for (let i = 0; i < 10_000; i++) {
      const d = core.nextDeadline();
      if (d > end) break;
      now = Math.max(now, d);
      core.poll(now);
    }
    now = end;
  };
  const answer = (q: Sent, fields: Partial<DnsMessage> = {}): Uint8Array =>
    writeDns(dnsMessage({ id: q.msg.id, qr: true, rd: true, ra: true, questions: q.msg.questions, ...fields }));
  const reply = (q: Sent, fields: Partial<DnsMessage> = {}, from: ResolverServer = q.to) => core.onUdp(q.port, from, answer(q, fields), now);
  return { core, sent, open, openedEver, taken, outcomes, events, conns, advance, answer, reply, now: () => now };
}

const a = (name: string, address: string, ttl = 300): DnsRecord => ({ name, class: CLASS_IN, ttl, type: 'A', address });
const cname = (name: string, target: string, ttl = 300): DnsRecord => ({ name, class: CLASS_IN, ttl, type: 'CNAME', target });
const soa = (zone: string, minimum: number): DnsRecord => ({ name: zone, class: CLASS_IN, ttl: 3600, type: 'SOA', mname: `ns.${zone}`, rname: `h.${zone}`, serial: 1, refresh: 1, retry: 1, expire: 1, minimum });

function ok(o: LookupOutcome | undefined) {
  if (!o?.ok) throw new Error(`expected an answer, got ${JSON.stringify(o)}`);
  return o.result;
}
function err(o: LookupOutcome | undefined): string {
  if (!o || o.ok) throw new Error(`expected an error, got ${JSON.stringify(o)}`);
  return o.error.code;
}

describe('resolver state machine', () => {
  it('asks once over UDP with RD and EDNS, and accepts the matching answer', () => {
    const h = harness();
    const key = h.core.lookup('Web.Test', TYPE.A, h.now());
    expect(h.sent).toHaveLength(1);
    const q = h.sent[0]!;
    expect(q.msg.questions).toEqual([{ name: 'web.test', type: TYPE.A, class: CLASS_IN }]);
    expect([q.msg.rd, q.msg.edns?.udpSize, q.to]).toEqual([true, 1232, S1]);
    h.reply(q, { answers: [a('web.test', '10.78.0.1')] });
    const r = ok(h.outcomes.get(key));
    expect(r.records.map((x) => (x as { address: string }).address)).toEqual(['10.78.0.1']);
    expect(r.ttl).toBe(300);
    expect(h.open.size).toBe(0); // the port is released
    expect(h.core.sizes.lookups).toBe(0);
  });

  it('uses a random port and a random ID for every attempt (RFC 5452)', () => {
    const h = harness({}, 42);
    for (let i = 0; i < 50; i++) h.core.lookup(`n${i}.test`, TYPE.A, h.now());
    const ports = new Set(h.sent.map((s) => s.port));
    const ids = new Set(h.sent.map((s) => s.msg.id));
    expect(ports.size).toBeGreaterThan(45);
    expect(ids.size).toBeGreaterThan(45);
    for (const p of ports) expect(p).toBeGreaterThanOrEqual(1024);
  });

  it('picks another port when the one drawn is taken', () => {
    const h = harness({}, 7);
    const first = seededRandom(7)();
    h.taken.add(1024 + Math.floor(first * (65536 - 1024)));
    h.core.lookup('web.test', TYPE.A, h.now());
    expect(h.sent).toHaveLength(1);
    expect(h.taken.has(h.sent[0]!.port)).toBe(false);
  });

  it('ignores answers with the wrong ID, source address, source port or question, and keeps waiting', () => {
    const h = harness();
    const key = h.core.lookup('web.test', TYPE.A, h.now());
    const q = h.sent[0]!;
    const good = { answers: [a('web.test', '10.78.0.1')] };
    h.core.onUdp(q.port, q.to, writeDns(dnsMessage({ id: (q.msg.id + 1) & 0xffff, qr: true, questions: q.msg.questions, ...good })), h.now());
    h.reply(q, good, { address: '10.78.0.66', port: 53 });
    h.reply(q, good, { address: S1.address, port: 5353 });
    h.reply(q, { ...good, questions: [{ name: 'other.test', type: TYPE.A, class: CLASS_IN }] });
    h.reply(q, { ...good, questions: [{ name: 'web.test', type: TYPE.AAAA, class: CLASS_IN }] });
    h.core.onUdp(q.port, q.to, writeDns(dnsMessage({ id: q.msg.id, qr: false, questions: q.msg.questions })), h.now());
    h.core.onUdp(q.port, q.to, Uint8Array.of(1, 2, 3), h.now());
    expect(h.outcomes.has(key)).toBe(false);
    expect(h.events.filter((e) => e.kind === 'ignored').map((e) => (e as { reason: string }).reason)).toEqual([
      'wrong-id',
      'wrong-source',
      'wrong-source',
      'wrong-question',
      'wrong-question',
      'not-a-response',
      'malformed',
    ]);
    // The right answer still gets through, even with the question in another case (RFC 4343).
    h.reply(q, { ...good, questions: [{ name: 'WEB.test', type: TYPE.A, class: CLASS_IN }] });
    expect(ok(h.outcomes.get(key)).records).toHaveLength(1);
  });

  it('retries with exponential backoff from new ports, then fails with ETIMEOUT', () => {
    const h = harness({ timeout: 1000, attempts: 3, totalTimeout: 60_000 });
    const key = h.core.lookup('web.test', TYPE.A, h.now());
    h.advance(20_000);
    expect(h.sent.map((s) => s.at)).toEqual([0, 1000, 3000]);
    expect(new Set(h.sent.map((s) => s.port)).size).toBe(3);
    expect(err(h.outcomes.get(key))).toBe('ETIMEOUT');
    // It failed when the third attempt's 4 s ran out, not later.
    expect(h.events.filter((e) => e.kind === 'timeout')).toHaveLength(3);
    expect(h.open.size).toBe(0);
  });

  it('stops at the total timeout even with attempts left', () => {
    const h = harness({ timeout: 1000, attempts: 10, totalTimeout: 2500 });
    const key = h.core.lookup('web.test', TYPE.A, h.now());
    h.advance(2499);
    expect(h.outcomes.has(key)).toBe(false);
    h.advance(1);
    expect(err(h.outcomes.get(key))).toBe('ETIMEOUT');
    expect(h.sent.map((s) => s.at)).toEqual([0, 1000]);
  });

  it('takes a late answer to an earlier attempt while a retry is out', () => {
    const h = harness({ timeout: 1000 });
    const key = h.core.lookup('web.test', TYPE.A, h.now());
    h.advance(1500);
    expect(h.sent).toHaveLength(2);
    h.reply(h.sent[0]!, { answers: [a('web.test', '10.78.0.1')] });
    expect(ok(h.outcomes.get(key)).records).toHaveLength(1);
    expect(h.open.size).toBe(0);
  });

  it('moves to the next server after the attempts on the first', () => {
    const h = harness({ servers: [S1, S2], timeout: 100, attempts: 2 });
    const key = h.core.lookup('web.test', TYPE.A, h.now());
    h.advance(300);
    expect(h.sent.map((s) => s.to.address)).toEqual([S1.address, S1.address, S2.address]);
    h.reply(h.sent[2]!, { answers: [a('web.test', '10.78.0.1')] });
    expect(ok(h.outcomes.get(key)).records).toHaveLength(1);
  });

  it('asks again over TCP when the answer is truncated, and takes the TCP answer', () => {
    const h = harness();
    const key = h.core.lookup('big.test', TYPE.A, h.now());
    h.reply(h.sent[0]!, { tc: true });
    expect(h.sent[1]!.transport).toBe('tcp');
    expect(h.sent[1]!.to).toEqual(S1);
    expect(h.sent[1]!.msg.edns).toBeUndefined();
    expect(h.open.size).toBe(0);
    const t = h.sent[1]!;
    const recs = Array.from({ length: 40 }, (_, i) => a('big.test', `10.0.0.${i + 1}`));
    // A wrong ID over TCP is ignored too.
    h.core.onTcpMessage(t.conn, writeDns(dnsMessage({ id: (t.msg.id + 1) & 0xffff, qr: true, questions: t.msg.questions, answers: recs })), h.now());
    expect(h.outcomes.has(key)).toBe(false);
    h.core.onTcpMessage(t.conn, h.answer(t, { answers: recs }), h.now());
    expect(ok(h.outcomes.get(key)).records).toHaveLength(40);
    expect(h.conns.size).toBe(0);
  });

  it('reports ECONNREFUSED when TCP is refused and no other server is left', () => {
    const h = harness();
    const key = h.core.lookup('big.test', TYPE.A, h.now());
    h.reply(h.sent[0]!, { tc: true });
    h.core.onTcpClosed(h.sent[1]!.conn, true, h.now());
    expect(err(h.outcomes.get(key))).toBe('ECONNREFUSED');
  });

  it('follows a CNAME chain inside one answer, and asks again for a target left unanswered', () => {
    const h = harness();
    const k1 = h.core.lookup('www.test', TYPE.A, h.now());
    h.reply(h.sent[0]!, { answers: [cname('www.test', 'web.test', 600), cname('web.test', 'host.test', 100), a('host.test', '10.78.0.7', 300)] });
    const r = ok(h.outcomes.get(k1));
    expect([r.canonicalName, r.cnames, r.ttl]).toEqual(['host.test', ['web.test', 'host.test'], 100]);

    const k2 = h.core.lookup('alias.test', TYPE.A, h.now());
    h.reply(h.sent[1]!, { answers: [cname('alias.test', 'elsewhere.example', 50)] });
    const q2 = h.sent[2]!;
    expect(q2.msg.questions[0]!.name).toBe('elsewhere.example');
    h.reply(q2, { answers: [a('elsewhere.example', '10.1.2.3', 900)] });
    const r2 = ok(h.outcomes.get(k2));
    expect([r2.name, r2.canonicalName, r2.ttl]).toEqual(['alias.test', 'elsewhere.example', 50]);
  });

  it('gives up on a CNAME loop or a chain past the bound (ELOOP)', () => {
    const h = harness({ maxCnameChain: 3 });
    const k1 = h.core.lookup('a.test', TYPE.A, h.now());
    h.reply(h.sent[0]!, { answers: [cname('a.test', 'b.test'), cname('b.test', 'a.test')] });
    expect(err(h.outcomes.get(k1))).toBe('ELOOP');
    const k2 = h.core.lookup('c0.test', TYPE.A, h.now());
    h.reply(h.sent[1]!, { answers: [0, 1, 2, 3].map((i) => cname(`c${i}.test`, `c${i + 1}.test`)) });
    expect(err(h.outcomes.get(k2))).toBe('ELOOP');
    // Hop by hop, through separate queries, the same bound holds.
    const k3 = h.core.lookup('d0.test', TYPE.A, h.now());
    for (let i = 0; i < 10 && !h.outcomes.has(k3); i++) h.reply(h.sent[h.sent.length - 1]!, { answers: [cname(`d${i}.test`, `d${i + 1}.test`)] });
    expect(err(h.outcomes.get(k3))).toBe('ELOOP');
  });

  it('maps NXDOMAIN to ENOTFOUND, no records to ENODATA, and SERVFAIL to ESERVFAIL after the last server', () => {
    const h = harness({ servers: [S1, S2] });
    const k1 = h.core.lookup('nope.test', TYPE.A, h.now());
    h.reply(h.sent[0]!, { rcode: RCODE.NXDOMAIN });
    expect(err(h.outcomes.get(k1))).toBe('ENOTFOUND');
    const k2 = h.core.lookup('web.test', TYPE.AAAA, h.now());
    h.reply(h.sent[1]!, {});
    expect(err(h.outcomes.get(k2))).toBe('ENODATA');
    const k3 = h.core.lookup('broken.test', TYPE.A, h.now());
    h.reply(h.sent[2]!, { rcode: RCODE.SERVFAIL });
    expect(h.sent[3]!.to).toEqual(S2); // the next server is asked
    h.reply(h.sent[3]!, { rcode: RCODE.SERVFAIL });
    expect(err(h.outcomes.get(k3))).toBe('ESERVFAIL');
    const k4 = h.core.lookup('x..test', TYPE.A, h.now());
    expect(err(h.outcomes.get(k4))).toBe('EBADNAME');
  });

  it('caches answers for their TTL and negative answers for the SOA minimum', () => {
    const h = harness();
    h.core.lookup('web.test', TYPE.A, h.now());
    h.reply(h.sent[0]!, { answers: [a('web.test', '10.78.0.1', 30)] });
    h.advance(29_000);
    const hit = h.core.lookup('WEB.test.', TYPE.A, h.now());
    expect(h.sent).toHaveLength(1);
    expect(ok(h.outcomes.get(hit))).toMatchObject({ fromCache: true, ttl: 1 });
    h.advance(1000);
    h.core.lookup('web.test', TYPE.A, h.now());
    expect(h.sent).toHaveLength(2); // expired: asked again
    h.reply(h.sent[1]!, { answers: [a('web.test', '10.78.0.1', 30)] });

    h.core.lookup('nope.test', TYPE.A, h.now());
    h.reply(h.sent[2]!, { rcode: RCODE.NXDOMAIN, authorities: [soa('test', 10)] });
    const neg = h.core.lookup('nope.test', TYPE.A, h.now());
    expect(err(h.outcomes.get(neg))).toBe('ENOTFOUND');
    expect(h.sent).toHaveLength(3);
    h.advance(10_000);
    h.core.lookup('nope.test', TYPE.A, h.now());
    expect(h.sent).toHaveLength(4);
  });

  it('keeps at most cacheSize entries, dropping the least recently used', () => {
    const h = harness({ cacheSize: 3 });
    for (let i = 0; i < 5; i++) {
      h.core.lookup(`n${i}.test`, TYPE.A, h.now());
      h.reply(h.sent[h.sent.length - 1]!, { answers: [a(`n${i}.test`, '10.0.0.1')] });
    }
    expect(h.core.sizes.cache).toBe(3);
    h.core.lookup('n0.test', TYPE.A, h.now());
    expect(h.sent).toHaveLength(6); // n0 was evicted
  });

  it('bounds the lookups in flight', () => {
    const h = harness({ maxInflight: 2 });
    h.core.lookup('a.test', TYPE.A, h.now());
    h.core.lookup('b.test', TYPE.A, h.now());
    const k = h.core.lookup('c.test', TYPE.A, h.now());
    expect(err(h.outcomes.get(k))).toBe('EBUSY');
  });
});
