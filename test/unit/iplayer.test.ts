import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseIpv4 as parseAddr } from '../../src/ip/addr.js';
import type { Ipv4Addr } from '../../src/ip/addr.js';
import { internetChecksum } from '../../src/ip/checksum.js';
import { echoIdentifier, echoSequence, parseIcmp, writeIcmp } from '../../src/ip/icmp.js';
import { IPV4_HEADER_LEN, parseIpv4, PROTO_ICMP, PROTO_TCP, PROTO_UDP, writeIpv4Header } from '../../src/ip/ipv4.js';
import type { Ipv4Header } from '../../src/ip/ipv4.js';
import { IpLayer } from '../../src/ip/layer.js';
import type { IpUpper } from '../../src/ip/layer.js';
import { Reassembler } from '../../src/ip/reassembly.js';
import { seededRandom } from '../../src/runtime/random.js';
import { ok } from '../helpers/unit.js';
import { ipv4 } from '../helpers/wire.js';

const US = parseAddr('10.0.0.2')!;
const PEER = parseAddr('10.0.0.1')!;

function layer(opts: Partial<ConstructorParameters<typeof IpLayer>[0]> = {}) {
  const out: Uint8Array[] = [];
  const ip = new IpLayer({ addr: US, mtu: 1500, transmit: (p) => out.push(p), ...opts });
  return { ip, out };
}

function ipPacket(
  protocol: number,
  payload: Uint8Array,
  f: { src?: Ipv4Addr; dst?: Ipv4Addr; id?: number; mf?: boolean; fragmentOffset?: number } = {},
): Uint8Array {
  const buf = new Uint8Array(IPV4_HEADER_LEN + payload.length);
  buf.set(payload, IPV4_HEADER_LEN);
  writeIpv4Header(buf, 0, { totalLength: buf.length, id: f.id ?? 0x77, protocol, src: f.src ?? PEER, dst: f.dst ?? US, ...f });
  return buf;
}

function echoRequest(id: number, seq: number, data: Uint8Array): Uint8Array {
  const icmp = new Uint8Array(8 + data.length);
  icmp.set(data, 8);
  writeIcmp(icmp, 0, { type: 8, code: 0, restOfHeader: ((id << 16) | seq) >>> 0 }, data.length);
  return icmp;
}

function bytes(n: number, seed: number): Uint8Array {
  const rnd = seededRandom(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
}

class Recorder implements IpUpper {
  got: Array<{ header: Ipv4Header; payload: Uint8Array; now: number }> = [];
  receive(header: Ipv4Header, payload: Uint8Array, now: number): void {
    this.got.push({ header, payload: payload.slice(), now });
  }
}

describe('IpLayer: ICMP echo', () => {
  it('answers an echo request with a fully correct echo reply', () => {
    const { ip, out } = layer();
    const data = bytes(57, 1); // odd length on purpose
    ip.receive(ipPacket(PROTO_ICMP, echoRequest(0xabcd, 42, data)), 5);
    expect(out).toHaveLength(1);
    const reply = out[0]!;
    expect(internetChecksum(reply, 0, 20)).toBe(0);
    const p = ok(parseIpv4(reply));
    expect(p.header.src).toBe(US);
    expect(p.header.dst).toBe(PEER);
    expect(p.header.protocol).toBe(PROTO_ICMP);
    expect(p.header.ttl).toBe(64);
    expect(p.header.totalLength).toBe(20 + 8 + 57);
    expect(p.header.mf).toBe(false);
    expect(internetChecksum(p.payload)).toBe(0); // ICMP checksum
    const m = ok(parseIcmp(p.payload));
    expect([m.type, m.code, echoIdentifier(m), echoSequence(m)]).toEqual([0, 0, 0xabcd, 42]);
    expect(m.data).toEqual(data);
    expect(ip.stats()['icmp.echo']).toBe(1);
    expect(ip.stats()['ip.out']).toBe(1);
  });

  it('answers a 4000-byte echo request that arrives in fragments with a fragmented reply', () => {
    // The peer builds the request with its own IpLayer, which fragments it (DF off).
    const peerOut: Uint8Array[] = [];
    const peer = new IpLayer({ addr: PEER, mtu: 1500, transmit: (p) => peerOut.push(p) });
    const data = bytes(4000 - 28, 2);
    const request = new Uint8Array(20 + 8 + data.length);
    request.set(echoRequest(7, 9, data), 20);
    peer.send(request, US, PROTO_ICMP, 0, { df: false });
    expect(peerOut).toHaveLength(3);

    const { ip, out } = layer();
    for (const frag of [peerOut[2]!, peerOut[0]!, peerOut[1]!]) ip.receive(frag, 1);
    expect(ip.stats()['ip.reassembled']).toBe(1);
    expect(out).toHaveLength(3);

    // Reassemble the reply here, checking each fragment on the way.
    const r = new Reassembler();
    let whole: Uint8Array | undefined;
    const offsets: number[] = [];
    for (const frag of out) {
      expect(frag.length).toBeLessThanOrEqual(1500);
      const p = ok(parseIpv4(frag));
      expect([p.header.src, p.header.dst, p.header.protocol, p.header.df]).toEqual([US, PEER, PROTO_ICMP, false]);
      expect(p.header.id).toBe(ok(parseIpv4(out[0]!)).header.id);
      offsets.push(p.header.fragmentOffset);
      whole = r.add(p.header, p.payload, 1) ?? whole;
    }
    expect(offsets).toEqual([0, 1480, 2960]);
    expect(whole).toBeDefined();
    const m = ok(parseIcmp(whole!));
    expect([m.type, echoIdentifier(m), echoSequence(m)]).toEqual([0, 7, 9]);
    expect(m.data).toEqual(data);
  });
});

describe('IpLayer: demux', () => {
  it('delivers to the registered transport with the header and a payload view', () => {
    const { ip } = layer();
    const udp = new Recorder();
    const tcp = new Recorder();
    ip.register(PROTO_UDP, udp);
    ip.register(PROTO_TCP, tcp);
    const pkt = ipPacket(PROTO_UDP, Uint8Array.of(1, 2, 3));
    ip.receive(pkt, 123);
    expect(udp.got).toHaveLength(1);
    expect(tcp.got).toHaveLength(0);
    expect(udp.got[0]!.header.src).toBe(PEER);
    expect(Array.from(udp.got[0]!.payload)).toEqual([1, 2, 3]);
    expect(udp.got[0]!.now).toBe(123);
    expect(ip.stats()['ip.delivered']).toBe(1);
  });

  it('delivers a reassembled datagram as if it arrived whole', () => {
    const { ip } = layer();
    const udp = new Recorder();
    ip.register(PROTO_UDP, udp);
    const data = bytes(24, 3);
    ip.receive(ipPacket(PROTO_UDP, data.subarray(16), { id: 5, fragmentOffset: 16 }), 0);
    ip.receive(ipPacket(PROTO_UDP, data.subarray(0, 16), { id: 5, mf: true }), 0);
    expect(udp.got).toHaveLength(1);
    expect(udp.got[0]!.payload).toEqual(data);
    expect(udp.got[0]!.header).toMatchObject({ mf: false, fragmentOffset: 0, totalLength: 44, id: 5 });
  });

  it('answers an unknown protocol (99) with ICMP Protocol Unreachable', () => {
    const { ip, out } = layer();
    const payload = bytes(30, 4);
    ip.receive(ipPacket(99, payload, { id: 0x1111 }), 0);
    expect(out).toHaveLength(1);
    const p = ok(parseIpv4(out[0]!));
    expect(p.header.dst).toBe(PEER);
    const m = ok(parseIcmp(p.payload));
    expect([m.type, m.code]).toEqual([3, 2]);
    const quoted = ok(parseIpv4(Uint8Array.from([...m.data.subarray(0, 20), ...payload])));
    expect(quoted.header).toMatchObject({ protocol: 99, id: 0x1111, src: PEER, dst: US, totalLength: 50 });
    expect(Array.from(m.data.subarray(20))).toEqual(Array.from(payload.subarray(0, 8)));
    expect(ip.stats()['ip.drop.unknown-protocol']).toBe(1);
    expect(ip.stats()['icmp.unreachable.out']).toBe(1);
  });

  it('refuses to register ICMP or a protocol outside 0..255', () => {
    const { ip } = layer();
    expect(() => ip.register(PROTO_ICMP, new Recorder())).toThrow(RangeError);
    expect(() => ip.register(256, new Recorder())).toThrow(RangeError);
  });
});

describe('IpLayer: drops', () => {
  const cases: Array<[string, () => Uint8Array, string]> = [
    ['a truncated packet', () => new Uint8Array(10), 'ip.drop.truncated'],
    ['a bad header checksum', () => Object.assign(ipPacket(PROTO_UDP, new Uint8Array(8)), { 10: 0 , 11: 0 }), 'ip.drop.bad-checksum'],
    ['IPv6', () => Object.assign(new Uint8Array(40), { 0: 0x60 }), 'ip.drop.bad-version'],
    ['a packet for another host', () => ipPacket(PROTO_UDP, new Uint8Array(8), { dst: parseAddr('10.0.0.3')! }), 'ip.drop.not-for-us'],
    ['a packet from 0.0.0.0', () => ipPacket(PROTO_ICMP, echoRequest(1, 1, new Uint8Array(0)), { src: 0 }), 'ip.drop.bad-src'],
    ['a packet from loopback', () => ipPacket(PROTO_ICMP, echoRequest(1, 1, new Uint8Array(0)), { src: parseAddr('127.0.0.1')! }), 'ip.drop.bad-src'],
    ['a packet from a multicast address', () => ipPacket(PROTO_ICMP, echoRequest(1, 1, new Uint8Array(0)), { src: parseAddr('224.0.0.1')! }), 'ip.drop.bad-src'],
    ['a packet claiming to come from us (LAND)', () => ipPacket(PROTO_ICMP, echoRequest(1, 1, new Uint8Array(0)), { src: US }), 'ip.drop.bad-src'],
  ];
  for (const [name, make, counter] of cases) {
    it(`drops and counts ${name}`, () => {
      const { ip, out } = layer();
      const udp = new Recorder();
      ip.register(PROTO_UDP, udp);
      ip.receive(make(), 0);
      expect(out).toHaveLength(0);
      expect(udp.got).toHaveLength(0);
      expect(ip.stats()[counter]).toBe(1);
      expect(ip.stats()['ip.in']).toBe(1);
      expect(ip.stats()['ip.delivered']).toBe(0);
    });
  }

  // Loose (131) and Strict (137) Source and Record Route, RFC 791 §3.1: type, length, pointer, route.
  const lsrr = Uint8Array.of(131, 7, 4, 10, 0, 0, 9);
  const ssrr = Uint8Array.of(137, 7, 4, 10, 0, 0, 9);
  const recordRoute = Uint8Array.of(7, 7, 4, 0, 0, 0, 0);
  const withOptions = (options: Uint8Array) => ipv4({ src: PEER, dst: US, protocol: PROTO_UDP, options }, new Uint8Array(8));

  it.each([
    ['loose source route', lsrr],
    ['strict source route', ssrr],
    ['source route after NOPs and record route', Uint8Array.of(1, 1, ...recordRoute, ...lsrr)],
  ])('drops and counts a packet with a %s option (Linux: accept_source_route = 0)', (_name, options) => {
    const { ip } = layer();
    const udp = new Recorder();
    ip.register(PROTO_UDP, udp);
    ip.receive(withOptions(options), 0);
    expect(udp.got).toHaveLength(0);
    expect(ip.stats()['ip.drop.source-route']).toBe(1);
  });

  it.each([
    ['record route', recordRoute],
    ['a source-route type after End of Option List', Uint8Array.of(0, 131, 7, 4, 10, 0, 0, 9)],
  ])('delivers a packet with other options: %s', (_name, options) => {
    const { ip } = layer();
    const udp = new Recorder();
    ip.register(PROTO_UDP, udp);
    ip.receive(withOptions(options), 0);
    expect(udp.got).toHaveLength(1);
    expect(ip.stats()['ip.drop.source-route']).toBeUndefined();
  });

  it("drops and counts packets from the subnet's network and broadcast addresses, when it knows the prefix", () => {
    const { ip } = layer({ prefix: 24 });
    const udp = new Recorder();
    ip.register(PROTO_UDP, udp);
    ip.receive(ipPacket(PROTO_UDP, new Uint8Array(8), { src: parseAddr('10.0.0.0')! }), 0);
    ip.receive(ipPacket(PROTO_UDP, new Uint8Array(8), { src: parseAddr('10.0.0.255')! }), 0);
    ip.receive(ipPacket(PROTO_UDP, new Uint8Array(8), { src: parseAddr('10.0.0.254')! }), 0);
    ip.receive(ipPacket(PROTO_UDP, new Uint8Array(8), { src: parseAddr('10.0.1.0')! }), 0); // another subnet's: routed, a host
    expect(ip.stats()['ip.drop.src-network']).toBe(1);
    expect(ip.stats()['ip.drop.src-broadcast']).toBe(1);
    expect(udp.got.map((g) => g.header.src)).toEqual([parseAddr('10.0.0.254'), parseAddr('10.0.1.0')]);
    // A /31 has no network or broadcast address (RFC 3021): both are hosts.
    const p2p = layer({ prefix: 31 });
    p2p.ip.register(PROTO_UDP, udp);
    p2p.ip.receive(ipPacket(PROTO_UDP, new Uint8Array(8), { src: parseAddr('10.0.0.3')! }), 0);
    expect(p2p.ip.stats()['ip.delivered']).toBe(1);
  });

  it('logs drops at debug level only when debug is enabled', () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const debugLog = pino({ level: 'debug' }, sink);
    layer({ log: debugLog }).ip.receive(ipPacket(PROTO_UDP, new Uint8Array(8), { dst: 1 }), 0);
    const infoLog = pino({ level: 'info' }, sink);
    layer({ log: infoLog }).ip.receive(ipPacket(PROTO_UDP, new Uint8Array(8), { dst: 1 }), 0);
    return new Promise<void>((resolve) => setImmediate(() => {
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'ip drop', reason: 'not-for-us', src: '10.0.0.1', dst: '0.0.0.1' });
      resolve();
    }));
  });

  it('never throws on random and mutated packets (seeded), and counts every one', () => {
    const { ip } = layer({ mtu: 576 });
    ip.register(PROTO_UDP, new Recorder());
    const rnd = seededRandom(1122);
    const templates = [
      ipPacket(PROTO_ICMP, echoRequest(1, 2, bytes(40, 5))),
      ipPacket(PROTO_UDP, bytes(30, 6)),
      ipPacket(PROTO_ICMP, bytes(16, 7), { id: 3, mf: true }),
      ipPacket(99, bytes(16, 8)),
    ];
    const N = 20_000;
    for (let n = 0; n < N; n++) {
      const t = templates[n % templates.length]!;
      const pkt = t.slice(0, Math.floor(rnd() * (t.length + 8)));
      for (let k = 0; k < 3 && pkt.length > 0; k++) pkt[Math.floor(rnd() * pkt.length)] = Math.floor(rnd() * 256);
      if (rnd() < 0.5 && pkt.length >= 20) {
        pkt[10] = 0;
        pkt[11] = 0;
        const s = internetChecksum(pkt, 0, 20);
        pkt[10] = s >>> 8;
        pkt[11] = s & 0xff;
      }
      expect(() => ip.receive(pkt, n)).not.toThrow();
      ip.poll(n);
    }
    expect(ip.stats()['ip.in']).toBe(N);
  });
});

describe('IpLayer: send', () => {
  it('fills in the header: our source, TTL 64, DF, an incrementing ID', () => {
    const { ip, out } = layer();
    for (let i = 0; i < 3; i++) {
      const pkt = new Uint8Array(20 + 10);
      pkt.fill(0xab, 20);
      ip.send(pkt, PEER, PROTO_UDP, 0);
    }
    const headers = out.map((p) => ok(parseIpv4(p)).header);
    for (const h of headers) {
      expect(h).toMatchObject({ src: US, dst: PEER, ttl: 64, df: true, mf: false, protocol: PROTO_UDP, totalLength: 30 });
    }
    expect(headers[1]!.id).toBe((headers[0]!.id + 1) & 0xffff);
    expect(headers[2]!.id).toBe((headers[0]!.id + 2) & 0xffff);
    expect(out[0]!.subarray(20)).toEqual(new Uint8Array(10).fill(0xab));
  });

  it('drops (and counts) a packet larger than the MTU when DF is set', () => {
    const { ip, out } = layer({ mtu: 576 });
    ip.send(new Uint8Array(577), PEER, PROTO_UDP, 0);
    expect(out).toHaveLength(0);
    expect(ip.stats()['ip.drop.out-too-big-df']).toBe(1);
  });

  it('fragments when DF is off: pieces of multiples of 8, same ID, MF on all but the last', () => {
    const { ip, out } = layer({ mtu: 576 });
    const data = bytes(2000, 9);
    const pkt = new Uint8Array(20 + data.length);
    pkt.set(data, 20);
    ip.send(pkt, PEER, PROTO_UDP, 0, { df: false });
    const parsed = out.map((p) => ok(parseIpv4(p)));
    expect(parsed.map((p) => p.header.fragmentOffset)).toEqual([0, 552, 1104, 1656]);
    expect(parsed.map((p) => p.header.mf)).toEqual([true, true, true, false]);
    expect(parsed.map((p) => p.payload.length)).toEqual([552, 552, 552, 344]);
    expect(new Set(parsed.map((p) => p.header.id)).size).toBe(1);
    for (const f of out) expect(f.length).toBeLessThanOrEqual(576);
    // The receiving side of another IpLayer puts them back together.
    const rx = new IpLayer({ addr: PEER, mtu: 576, transmit: () => {} });
    const rec = new Recorder();
    rx.register(PROTO_UDP, rec);
    for (const f of [...out].reverse()) rx.receive(f, 0);
    expect(rec.got).toHaveLength(1);
    expect(rec.got[0]!.payload).toEqual(data);
    expect(ip.stats()['ip.frag.out']).toBe(4);
  });

  it('rejects an MTU below the IPv4 minimum of 68', () => {
    expect(() => layer({ mtu: 67 })).toThrow(RangeError);
  });
});

describe('IpLayer: reassembly timeouts', () => {
  it('expires on poll(now), sends Time Exceeded (code 1) quoting the first fragment', () => {
    const { ip, out } = layer({ reassembly: { timeoutMs: 30_000 } });
    const first = bytes(16, 10);
    ip.receive(ipPacket(PROTO_UDP, first, { id: 9, mf: true }), 1000);
    expect(ip.nextDeadline()).toBe(31_000);
    ip.poll(30_999);
    expect(out).toHaveLength(0);
    ip.poll(31_000);
    expect(ip.nextDeadline()).toBe(Infinity);
    expect(ip.stats()['ip.reasm.timeouts']).toBe(1);
    expect(out).toHaveLength(1);
    const m = ok(parseIcmp(ok(parseIpv4(out[0]!)).payload));
    expect([m.type, m.code]).toEqual([11, 1]);
    expect((m.data[4]! << 8) | m.data[5]!).toBe(9); // the quoted ID
    expect(Array.from(m.data.subarray(20))).toEqual(Array.from(first.subarray(0, 8)));
  });

  it('sends nothing when the first fragment never came', () => {
    const { ip, out } = layer({ reassembly: { timeoutMs: 100 } });
    ip.receive(ipPacket(PROTO_UDP, bytes(16, 11), { id: 9, fragmentOffset: 16 }), 0);
    ip.poll(100);
    expect(out).toHaveLength(0);
    expect(ip.stats()['ip.reasm.timeouts']).toBe(1);
  });
});
