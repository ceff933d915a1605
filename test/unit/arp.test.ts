import { describe, expect, it } from 'vitest';
import { formatIpv4, parseIpv4 } from '../../src/ip/addr.js';
import { ARP_REPLY, ARP_REQUEST, Arp, parseArp, writeArp } from '../../src/link/arp.js';
import type { ArpConfig, ArpPacket } from '../../src/link/arp.js';
import { BROADCAST_MAC, ETHERTYPE_ARP, ZERO_MAC, formatMac, parseEthernet, parseMac } from '../../src/link/ethernet.js';
import { seededRandom } from '../../src/runtime/random.js';

const OUR_MAC = parseMac('02:00:00:00:00:02')!;
const OUR_IP = parseIpv4('10.1.0.2')!;
const PEER_MAC = parseMac('02:00:00:00:00:01')!;
const PEER_IP = parseIpv4('10.1.0.1')!;

interface Sent {
  dst: string;
  kind: string;
}

/** An Arp with its output decoded into one-line descriptions, e.g. "ff:..:ff who-has 10.1.0.1". */
function harness(config: Partial<ArpConfig> = {}) {
  const frames: Uint8Array[] = [];
  const unreachable: Uint8Array[] = [];
  const arp = new Arp({
    mac: OUR_MAC,
    addr: OUR_IP,
    prefix: 24,
    output: (f) => frames.push(f),
    unreachable: (p) => unreachable.push(p),
    config: { announceCount: 0, ...config },
    random: seededRandom(7),
  });
  const sent = (): Sent[] =>
    frames.splice(0).map((f) => {
      const e = parseEthernet(f);
      if ('error' in e) throw new Error(e.error);
      if (e.etherType !== ETHERTYPE_ARP) return { dst: formatMac(e.dst), kind: `ipv4 ${e.payload[0]}` };
      const p = parseArp(e.payload);
      if ('error' in p) throw new Error(p.error);
      const kind =
        p.op === ARP_REQUEST
          ? `who-has ${formatIpv4(p.targetIp)} tell ${formatIpv4(p.senderIp)}`
          : `reply ${formatIpv4(p.senderIp)} is-at ${formatMac(p.senderMac)} to ${formatIpv4(p.targetIp)}`;
      return { dst: formatMac(e.dst), kind };
    });
  return { arp, sent, unreachable, frames };
}

function arpFrom(fields: Partial<ArpPacket> & { op: number }): Uint8Array {
  return writeArp({ senderMac: PEER_MAC, senderIp: PEER_IP, targetMac: ZERO_MAC, targetIp: OUR_IP, ...fields });
}

const replyToUs = () => arpFrom({ op: ARP_REPLY, targetMac: OUR_MAC });
const packet = (tag: number, len = 100) => new Uint8Array(len).fill(tag);

describe('ARP codec', () => {
  it('round-trips a request and accepts padding after the 28 bytes', () => {
    const b = arpFrom({ op: ARP_REQUEST });
    expect(b.length).toBe(28);
    const padded = new Uint8Array(46);
    padded.set(b);
    const p = parseArp(padded);
    if ('error' in p) throw new Error(p.error);
    expect(p.op).toBe(ARP_REQUEST);
    expect(formatMac(p.senderMac)).toBe('02:00:00:00:00:01');
    expect(formatIpv4(p.senderIp)).toBe('10.1.0.1');
    expect(formatIpv4(p.targetIp)).toBe('10.1.0.2');
  });

  it('rejects short packets, other hardware or protocol types and lengths, unknown opcodes', () => {
    const good = arpFrom({ op: ARP_REQUEST });
    for (let n = 0; n < 28; n++) expect(parseArp(good.subarray(0, n))).toEqual({ error: 'short' });
    const bad = (i: number, v: number) => {
      const b = Uint8Array.from(good);
      b[i] = v;
      return parseArp(b);
    };
    expect(bad(1, 6)).toEqual({ error: 'hardware' }); // IEEE 802 networks
    expect(bad(4, 8)).toEqual({ error: 'hardware' }); // hlen 8
    expect(bad(2, 0x86)).toEqual({ error: 'protocol' }); // 0x86dd: IPv6
    expect(bad(5, 16)).toEqual({ error: 'protocol' }); // plen 16
    expect(bad(7, 3)).toEqual({ error: 'opcode' }); // RARP request
    expect(bad(6, 1)).toEqual({ error: 'opcode' }); // 0x0101
  });

  it('never throws on random bytes, and neither does the cache fed with them', () => {
    const rand = seededRandom(3);
    const { arp } = harness();
    for (let i = 0; i < 3000; i++) {
      const b = Uint8Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256));
      // Make a third of them well-formed headers so the cache logic sees hostile contents too.
      if (i % 3 === 0 && b.length >= 8) b.set([0, 1, 8, 0, 6, 4, 0, 1 + (i & 1)]);
      expect(() => parseArp(b)).not.toThrow();
      expect(() => arp.receive(b, PEER_MAC, i)).not.toThrow();
    }
    expect(arp.size).toBeLessThanOrEqual(1024);
  });
});

describe('ARP answers', () => {
  it('replies to a request for our address, unicast to the asker, and learns it as STALE', () => {
    const { arp, sent } = harness();
    arp.receive(arpFrom({ op: ARP_REQUEST }), PEER_MAC, 0);
    expect(sent()).toEqual([{ dst: '02:00:00:00:00:01', kind: 'reply 10.1.0.2 is-at 02:00:00:00:00:02 to 10.1.0.1' }]);
    expect(arp.state(PEER_IP)).toBe('STALE');
  });

  it('does not answer, nor learn from, a request for another address', () => {
    const { arp, sent } = harness();
    arp.receive(arpFrom({ op: ARP_REQUEST, targetIp: parseIpv4('10.1.0.9')! }), PEER_MAC, 0);
    expect(sent()).toEqual([]);
    expect(arp.state(PEER_IP)).toBeUndefined();
    expect(arp.stats()['arp.not-for-us']).toBe(1);
  });

  it('ignores a reply nobody asked for (no entry), as Linux does with arp_accept=0', () => {
    const { arp, sent } = harness();
    arp.receive(replyToUs(), PEER_MAC, 0);
    expect(sent()).toEqual([]);
    expect(arp.state(PEER_IP)).toBeUndefined();
    expect(arp.stats()['arp.reply.unsolicited']).toBe(1);
  });

  it('answers an RFC 5227 probe (sender 0.0.0.0) for our address without learning anything', () => {
    const { arp, sent } = harness();
    arp.receive(arpFrom({ op: ARP_REQUEST, senderIp: 0 }), PEER_MAC, 0);
    expect(sent()).toEqual([{ dst: '02:00:00:00:00:01', kind: 'reply 10.1.0.2 is-at 02:00:00:00:00:02 to 0.0.0.0' }]);
    expect(arp.size).toBe(0);
  });

  it('counts a conflict when another host claims our address, and drops group or zero sender MACs', () => {
    const { arp, sent } = harness();
    arp.receive(arpFrom({ op: ARP_REQUEST, senderIp: OUR_IP }), PEER_MAC, 0);
    arp.receive(arpFrom({ op: ARP_REQUEST, senderMac: BROADCAST_MAC }), PEER_MAC, 0);
    arp.receive(arpFrom({ op: ARP_REQUEST, senderMac: ZERO_MAC }), PEER_MAC, 0);
    expect(sent()).toEqual([]);
    expect(arp.stats()).toMatchObject({ 'arp.conflict': 1, 'arp.drop.bad-sender-mac': 2 });
    expect(arp.size).toBe(0);
  });

  it('does not learn senders outside our subnet', () => {
    const { arp, sent } = harness();
    arp.receive(arpFrom({ op: ARP_REQUEST, senderIp: parseIpv4('192.0.2.1')! }), PEER_MAC, 0);
    expect(sent().length).toBe(1);
    expect(arp.size).toBe(0);
  });

  it('announces our address twice at start, 2 s apart (RFC 5227 section 2.3)', () => {
    const { arp, sent } = harness({ announceCount: 2 });
    expect(arp.nextDeadline()).toBe(0);
    arp.poll(0);
    expect(sent()).toEqual([{ dst: 'ff:ff:ff:ff:ff:ff', kind: 'who-has 10.1.0.2 tell 10.1.0.2' }]);
    expect(arp.nextDeadline()).toBe(2000);
    arp.poll(1999);
    expect(sent()).toEqual([]);
    arp.poll(2000);
    expect(sent()).toEqual([{ dst: 'ff:ff:ff:ff:ff:ff', kind: 'who-has 10.1.0.2 tell 10.1.0.2' }]);
    expect(arp.nextDeadline()).toBe(Infinity);
  });
});

describe('neighbour cache states on a virtual clock', () => {
  it('INCOMPLETE: queues packets, then a reply makes it REACHABLE and sends them in order', () => {
    const { arp, sent } = harness();
    expect(arp.resolve(PEER_IP, packet(1), 0)).toBeUndefined();
    expect(arp.resolve(PEER_IP, packet(2), 10)).toBeUndefined();
    expect(arp.state(PEER_IP)).toBe('INCOMPLETE');
    expect(sent()).toEqual([{ dst: 'ff:ff:ff:ff:ff:ff', kind: 'who-has 10.1.0.1 tell 10.1.0.2' }]);
    arp.receive(replyToUs(), PEER_MAC, 20);
    expect(arp.state(PEER_IP)).toBe('REACHABLE');
    expect(sent()).toEqual([
      { dst: '02:00:00:00:00:01', kind: 'ipv4 1' },
      { dst: '02:00:00:00:00:01', kind: 'ipv4 2' },
    ]);
    expect(formatMac(arp.resolve(PEER_IP, packet(3), 30)!)).toBe('02:00:00:00:00:01');
  });

  it('retries 3 times 1 s apart, then gives up: entry gone, ICMP host unreachable for each queued packet', () => {
    const { arp, sent, unreachable } = harness();
    arp.resolve(PEER_IP, packet(1), 0);
    arp.resolve(PEER_IP, packet(2), 500);
    const times: number[] = [0];
    sent();
    for (let now = 1; now <= 5000; now++) {
      if (arp.nextDeadline() > now) continue;
      arp.poll(now);
      if (sent().length) times.push(now);
    }
    expect(times).toEqual([0, 1000, 2000]);
    expect(arp.state(PEER_IP)).toBeUndefined();
    expect(unreachable.map((p) => p[0])).toEqual([1, 2]);
    expect(arp.stats()['arp.failed']).toBe(1);
    expect(arp.nextDeadline()).toBe(Infinity);
  });

  it('bounds the queue of a neighbour being resolved: the oldest packets go first', () => {
    const { arp, sent } = harness({ queueBytes: 1000 });
    for (let i = 0; i < 25; i++) arp.resolve(PEER_IP, packet(i, 100), i);
    expect(arp.stats()['arp.queue.dropped']).toBe(15);
    sent();
    arp.receive(replyToUs(), PEER_MAC, 100);
    expect(sent().map((s) => s.kind)).toEqual(Array.from({ length: 10 }, (_, i) => `ipv4 ${i + 15}`));
  });

  it('REACHABLE -> STALE after the reachable time, STALE -> DELAY when used, -> PROBE after 5 s, reply -> REACHABLE', () => {
    const { arp, sent } = harness();
    arp.resolve(PEER_IP, packet(1), 0);
    arp.receive(replyToUs(), PEER_MAC, 0);
    sent();
    // base_reachable_time 30 s, randomised to 15..45 s.
    const staleAt = arp.nextDeadline();
    expect(staleAt).toBeGreaterThanOrEqual(15_000);
    expect(staleAt).toBeLessThanOrEqual(45_000);
    arp.poll(staleAt);
    expect(arp.state(PEER_IP)).toBe('STALE');
    // A STALE entry is still used: the packet goes out at once.
    expect(arp.resolve(PEER_IP, packet(2), staleAt + 100)).toBeDefined();
    expect(arp.state(PEER_IP)).toBe('DELAY');
    expect(arp.nextDeadline()).toBe(staleAt + 5100);
    arp.poll(staleAt + 5100);
    expect(arp.state(PEER_IP)).toBe('PROBE');
    // The probe is unicast to the address we have (Linux: ucast_solicit).
    expect(sent()).toEqual([{ dst: '02:00:00:00:00:01', kind: 'who-has 10.1.0.1 tell 10.1.0.2' }]);
    arp.receive(replyToUs(), PEER_MAC, staleAt + 5200);
    expect(arp.state(PEER_IP)).toBe('REACHABLE');
  });

  it('PROBE: 3 unanswered unicast requests remove the entry', () => {
    const { arp, sent } = harness({ baseReachableMs: 1000 });
    arp.resolve(PEER_IP, packet(1), 0);
    arp.receive(replyToUs(), PEER_MAC, 0);
    arp.poll(arp.nextDeadline()); // STALE
    arp.resolve(PEER_IP, packet(2), 2000); // DELAY
    sent();
    const states: string[] = [];
    for (let now = 2000; now < 20_000 && arp.state(PEER_IP) !== undefined; now = arp.nextDeadline()) {
      arp.poll(now);
      states.push(`${now} ${arp.state(PEER_IP) ?? 'gone'}`);
    }
    expect(states).toEqual(['2000 DELAY', '7000 PROBE', '8000 PROBE', '9000 PROBE', '10000 gone']);
    expect(sent().map((s) => s.dst)).toEqual(['02:00:00:00:00:01', '02:00:00:00:00:01', '02:00:00:00:00:01']);
  });

  it('removes a STALE entry unused for gc_stale_time (60 s)', () => {
    const { arp } = harness();
    arp.receive(arpFrom({ op: ARP_REQUEST }), PEER_MAC, 1000);
    expect(arp.state(PEER_IP)).toBe('STALE');
    arp.poll(60_999);
    expect(arp.state(PEER_IP)).toBe('STALE');
    arp.poll(61_000);
    expect(arp.state(PEER_IP)).toBeUndefined();
  });

  it('a request with a new MAC updates the entry (STALE); with the same MAC it leaves REACHABLE alone', () => {
    const { arp } = harness();
    arp.resolve(PEER_IP, packet(1), 0);
    arp.receive(replyToUs(), PEER_MAC, 0);
    arp.receive(arpFrom({ op: ARP_REQUEST }), PEER_MAC, 10);
    expect(arp.state(PEER_IP)).toBe('REACHABLE');
    const moved = parseMac('02:00:00:00:00:77')!;
    arp.receive(arpFrom({ op: ARP_REQUEST, senderMac: moved }), moved, 20);
    expect(arp.state(PEER_IP)).toBe('STALE');
    expect(arp.neighbours(20)[0]!.mac).toBe('02:00:00:00:00:77');
  });

  it('a flood of requests from random senders cannot grow the cache past its bound, and our own traffic still resolves', () => {
    const { arp, sent } = harness({ maxEntries: 64 });
    const rand = seededRandom(11);
    for (let i = 0; i < 10_000; i++) {
      const senderIp = (parseIpv4('10.1.0.0')! | (1 + Math.floor(rand() * 250))) >>> 0;
      if (senderIp === OUR_IP) continue;
      const senderMac = Uint8Array.of(2, 0, 0, i >> 8, i & 0xff, 1);
      arp.receive(arpFrom({ op: ARP_REQUEST, senderIp, senderMac }), senderMac, i);
    }
    // /24 only has 253 other hosts; a wider flood: /16 senders on a /16 cache.
    const wide = new Arp({ mac: OUR_MAC, addr: OUR_IP, prefix: 16, output: () => {}, unreachable: () => {}, config: { maxEntries: 64, announceCount: 0 } });
    for (let i = 0; i < 20_000; i++) {
      const senderIp = (parseIpv4('10.1.0.0')! + 3 + i) >>> 0;
      wide.receive(arpFrom({ op: ARP_REQUEST, senderIp }), PEER_MAC, i);
    }
    expect(arp.size).toBe(64);
    expect(wide.size).toBe(64);
    expect(wide.stats()['arp.cache.full']).toBeGreaterThan(19_000);
    // Our own next hop evicts the oldest STALE entry and resolves.
    const gw = parseIpv4('10.1.0.254')!;
    sent();
    wide.resolve(gw, packet(1), 30_000);
    expect(wide.state(gw)).toBe('INCOMPLETE');
    expect(wide.size).toBe(64);
  });

  it('does not resolve an address outside the subnet (the IP layer sends those to the gateway)', () => {
    const { arp, sent } = harness();
    expect(arp.resolve(parseIpv4('192.0.2.1')!, packet(1), 0)).toBeUndefined();
    expect(sent()).toEqual([]);
    expect(arp.stats()['arp.drop.off-link']).toBe(1);
  });
});
