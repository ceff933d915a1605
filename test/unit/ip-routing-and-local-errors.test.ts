/**
 * The IPv4 layer's host rules beyond receive and send: the next hop (RFC 1122 §3.3.1: on-link
 * destinations directly, everything else through the gateway), a failed neighbour resolution
 * reported as Host Unreachable to our own transport (as Linux does), the bounds on MTU,
 * protocol numbers and datagram length, and the counters it exposes.
 */
import { describe, expect, it } from 'vitest';
import { parseIpv4 as addr } from '../../src/ip/addr.js';
import { ICMP_DEST_UNREACHABLE, UNREACH_HOST } from '../../src/ip/icmp.js';
import { IPV4_HEADER_LEN, PROTO_TCP, PROTO_UDP, parseIpv4, writeIpv4Header } from '../../src/ip/ipv4.js';
import type { IcmpErrorInfo } from '../../src/ip/layer.js';
import { IpLayer } from '../../src/ip/layer.js';

const US = addr('10.1.2.3')!;

function layer(opts: Partial<ConstructorParameters<typeof IpLayer>[0]> = {}) {
  const sent: Array<{ packet: Uint8Array; hop: number; now: number }> = [];
  const ip = new IpLayer({ addr: US, mtu: 1500, transmit: (packet, hop, now) => sent.push({ packet, hop, now }), ...opts });
  return { ip, sent };
}

describe('next hop (RFC 1122 §3.3.1)', () => {
  it('without a gateway every destination is on the link (a point-to-point TUN)', () => {
    const { ip } = layer({ prefix: 24 });
    expect(ip.nextHop(addr('8.8.8.8')!)).toBe(addr('8.8.8.8'));
  });

  it('with a gateway: on-link destinations directly, others through the gateway', () => {
    const gw = addr('10.1.2.1')!;
    const { ip, sent } = layer({ prefix: 24, gateway: gw });
    expect(ip.nextHop(addr('10.1.2.200')!)).toBe(addr('10.1.2.200'));
    expect(ip.nextHop(addr('10.1.3.1')!)).toBe(gw);
    expect(ip.nextHop(addr('8.8.8.8')!)).toBe(gw);
    // Broadcast and multicast stay on the link.
    expect(ip.nextHop(0xffffffff)).toBe(0xffffffff);
    expect(ip.nextHop(addr('224.0.0.251')!)).toBe(addr('224.0.0.251'));
    // send() hands the packet to the link with that hop, at the time given.
    ip.send(new Uint8Array(IPV4_HEADER_LEN + 8), addr('8.8.8.8')!, PROTO_UDP, 42);
    ip.send(new Uint8Array(IPV4_HEADER_LEN + 8), addr('10.1.2.9')!, PROTO_UDP, 43);
    expect(sent.map((s) => [s.hop, s.now])).toEqual([[gw, 42], [addr('10.1.2.9'), 43]]);
  });

  it('the prefix decides what is on-link; the default is /32 (only ourselves)', () => {
    const gw = addr('10.0.0.1')!;
    expect(layer({ prefix: 16, gateway: gw }).ip.nextHop(addr('10.1.99.99')!)).toBe(addr('10.1.99.99'));
    expect(layer({ prefix: 25, gateway: gw }).ip.nextHop(addr('10.1.2.200')!)).toBe(gw);
    expect(layer({ gateway: gw }).ip.nextHop(addr('10.1.2.4')!)).toBe(gw);
  });

  it('fragments of one datagram all go to the same hop', () => {
    const gw = addr('10.1.2.1')!;
    const { ip, sent } = layer({ prefix: 24, gateway: gw, mtu: 576 });
    ip.send(new Uint8Array(IPV4_HEADER_LEN + 2000), addr('8.8.4.4')!, PROTO_UDP, 0, { df: false });
    expect(sent.length).toBe(4);
    expect(new Set(sent.map((s) => s.hop))).toEqual(new Set([gw]));
  });
});

describe('a neighbour that never answered (local Host Unreachable)', () => {
  function tcpPacket(src: number, dst: number, payloadLen = 20): Uint8Array {
    const p = new Uint8Array(IPV4_HEADER_LEN + payloadLen);
    for (let i = 0; i < payloadLen; i++) p[IPV4_HEADER_LEN + i] = i + 1;
    writeIpv4Header(p, 0, { totalLength: p.length, id: 9, protocol: PROTO_TCP, src, dst });
    return p;
  }

  it('is reported to the transport that sent the packet, quoting its header and first 8 bytes', () => {
    const { ip, sent } = layer();
    const errors: IcmpErrorInfo[] = [];
    ip.register(PROTO_TCP, { receive: () => {}, onIcmpError: (e) => errors.push(e) });
    const dst = addr('10.1.2.77')!;
    ip.localUnreachable(tcpPacket(US, dst), 5);
    expect(errors).toEqual([{ type: ICMP_DEST_UNREACHABLE, code: UNREACH_HOST, mtu: 0, src: US, dst, protocol: PROTO_TCP, quoted: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]) }]);
    expect(sent).toEqual([]); // nothing goes on the wire
    expect(ip.stats()['icmp.unreachable.local']).toBe(1);
    expect(ip.stats()['icmp.error.delivered']).toBe(1);
  });

  it('a packet shorter than header + 8 is quoted whole; one we did not send, or garbage, is only counted', () => {
    const { ip } = layer();
    const errors: IcmpErrorInfo[] = [];
    ip.register(PROTO_TCP, { receive: () => {}, onIcmpError: (e) => errors.push(e) });
    ip.localUnreachable(tcpPacket(US, addr('10.1.2.8')!, 8), 0);
    expect(errors.map((e) => Array.from(e.quoted))).toEqual([[1, 2, 3, 4, 5, 6, 7, 8]]);
    ip.localUnreachable(tcpPacket(addr('10.9.9.9')!, US), 0);
    ip.localUnreachable(Uint8Array.from([1, 2, 3]), 0);
    expect(errors.length).toBe(1);
    expect(ip.stats()['ip.drop.local-unreachable-unparsable']).toBe(2);
    expect(ip.stats()['icmp.unreachable.local']).toBe(1);
  });
});

describe('IpLayer bounds and counters', () => {
  it('accepts an MTU of 68..65535 only', () => {
    for (const mtu of [68, 576, 65535]) expect(layer({ mtu }).ip.mtu).toBe(mtu);
    for (const mtu of [67, 65536, 1500.5, NaN]) expect(() => layer({ mtu }), String(mtu)).toThrow(/mtu must be an integer in 68\.\.65535/);
  });

  it('registers protocols 0..255 except ICMP', () => {
    const { ip } = layer();
    for (const p of [0, 6, 17, 255]) expect(() => ip.register(p, { receive: () => {} })).not.toThrow();
    for (const p of [-1, 1, 256, 6.5]) expect(() => ip.register(p, { receive: () => {} }), String(p)).toThrow(/cannot register protocol/);
  });

  it('refuses to send a datagram shorter than its header or longer than 65535 bytes', () => {
    const { ip, sent } = layer();
    ip.send(new Uint8Array(IPV4_HEADER_LEN - 1), US, PROTO_UDP, 0);
    ip.send(new Uint8Array(65536), US, PROTO_UDP, 0, { df: false });
    expect(sent).toEqual([]);
    expect(ip.stats()['ip.drop.out-bad-length']).toBe(2);
    ip.send(new Uint8Array(IPV4_HEADER_LEN), US, PROTO_UDP, 0);
    ip.send(new Uint8Array(65535), US, PROTO_UDP, 0, { df: false });
    expect(sent.length).toBe(1 + Math.ceil((65535 - 20) / 1480));
  });

  it('a datagram of exactly the MTU goes whole; one byte more is fragmented or, with DF, dropped', () => {
    const { ip, sent } = layer({ mtu: 600 });
    ip.send(new Uint8Array(600), US, PROTO_UDP, 0);
    expect(sent.length).toBe(1);
    expect(parseIpv4(sent[0]!.packet)).toMatchObject({ header: { df: true, mf: false, totalLength: 600 } });
    ip.send(new Uint8Array(601), US, PROTO_UDP, 0);
    expect(sent.length).toBe(1);
    expect(ip.stats()['ip.drop.out-too-big-df']).toBe(1);
    ip.send(new Uint8Array(601), US, PROTO_UDP, 0, { df: false });
    expect(sent.length).toBe(3); // 576 + 5 data bytes
    expect(sent.slice(1).map((s) => (parseIpv4(s.packet) as { header: { totalLength: number } }).header.totalLength)).toEqual([596, 25]);
  });

  it('IDs count up and wrap at 16 bits', () => {
    const { ip, sent } = layer();
    for (let i = 0; i < 65537; i++) ip.send(new Uint8Array(IPV4_HEADER_LEN), US, PROTO_UDP, 0);
    const id = (k: number) => (parseIpv4(sent[k]!.packet) as { header: { id: number } }).header.id;
    expect([id(0), id(1), id(65535), id(65536)]).toEqual([0, 1, 65535, 0]);
  });

  it('stats show the usual counters while zero, and the reassembler under ip.reasm.*', () => {
    const { ip } = layer();
    const s = ip.stats();
    for (const k of ['ip.in', 'ip.out', 'ip.delivered', 'ip.frag.in', 'ip.frag.out', 'ip.reassembled', 'icmp.in', 'icmp.echo', 'icmp.unreachable.out']) expect(s[k], k).toBe(0);
    expect(s['ip.reasm.fragments']).toBe(0);
    expect(s['ip.reasm.buffered-bytes']).toBe(0);
    expect(ip.nextDeadline()).toBe(Infinity);
  });
});
