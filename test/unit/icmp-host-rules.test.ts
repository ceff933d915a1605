/**
 * ICMP host rules (RFC 792, RFC 1122 §3.2.2) at their edges: which ICMP messages may be answered
 * with an error (queries yes, errors and unknown types never), the fields of the errors we send,
 * the echo reply's DF bit, the checks on a quoted datagram (RFC 1191, RFC 5927), and the debug
 * log lines that say why a message was dropped or an error suppressed.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseIpv4 as addr, readIpv4 } from '../../src/ip/addr.js';
import { internetChecksum } from '../../src/ip/checksum.js';
import type { IcmpHost } from '../../src/ip/icmp.js';
import { Icmp, echoIdentifier, echoSequence, parseIcmp, parseQuotedDatagram, writeIcmp } from '../../src/ip/icmp.js';
import type { Ipv4Header } from '../../src/ip/ipv4.js';
import { IPV4_HEADER_LEN, PROTO_ICMP, PROTO_TCP, PROTO_UDP, writeIpv4Header } from '../../src/ip/ipv4.js';
import type { IcmpErrorInfo } from '../../src/ip/layer.js';
import { Counters } from '../../src/ip/stats.js';
import { ok } from '../helpers/unit.js';

const US = addr('10.0.0.2')!;
const PEER = addr('10.0.0.1')!;

function header(f: Partial<Ipv4Header> = {}): Ipv4Header {
  return { ihl: 20, tos: 0, totalLength: 48, id: 0x1234, df: true, mf: false, fragmentOffset: 0, ttl: 64, protocol: PROTO_UDP, checksum: 0, src: PEER, dst: US, ...f };
}

function icmpBytes(type: number, code: number, rest: number, data: Uint8Array): Uint8Array {
  const buf = new Uint8Array(8 + data.length);
  buf.set(data, 8);
  writeIcmp(buf, 0, { type, code, restOfHeader: rest }, data.length);
  return buf;
}

/** An Icmp over a host that records what it sends and the errors it delivers. */
function icmpHost(opts: { mtu?: number; log?: pino.Logger } = {}) {
  const sent: Array<{ packet: Uint8Array; dst: number; protocol: number; df: boolean | undefined }> = [];
  const delivered: IcmpErrorInfo[] = [];
  const host: IcmpHost = {
    addr: US,
    mtu: opts.mtu ?? 1500,
    send: (packet, dst, protocol, _now, o) => sent.push({ packet: packet.slice(), dst, protocol, df: o?.df }),
    deliverIcmpError: (e) => delivered.push(e),
  };
  const counters = new Counters();
  const icmp = new Icmp(host, counters, { log: opts.log });
  return { icmp, sent, delivered, counters };
}

/** A quoted datagram we sent: IPv4 header (src US) + `data`. */
function quote(data: Uint8Array, f: { totalLength?: number; flags?: number; src?: number } = {}): Uint8Array {
  const q = new Uint8Array(IPV4_HEADER_LEN + data.length);
  writeIpv4Header(q, 0, { totalLength: f.totalLength ?? q.length, id: 5, protocol: PROTO_TCP, src: f.src ?? US, dst: PEER });
  if (f.flags !== undefined) {
    q[6] = f.flags >>> 8;
    q[7] = f.flags & 0xff;
  }
  q.set(data, IPV4_HEADER_LEN);
  return q;
}

const EIGHT = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);

describe('an ICMP error about an ICMP message (RFC 1122 §3.2.2)', () => {
  it('may answer a query: echo, echo reply, router advertisement/solicitation, timestamp, information, address mask', () => {
    for (const type of [0, 8, 9, 10, 13, 14, 15, 16, 17, 18]) {
      const { icmp, sent } = icmpHost();
      icmp.sendError(3, 2, header({ protocol: PROTO_ICMP }), icmpBytes(type, 0, 0, new Uint8Array(4)), 0);
      expect(sent.length, `type ${type}`).toBe(1);
    }
  });

  it('never answers an error or a message of a type it does not know', () => {
    for (const type of [3, 4, 5, 6, 11, 12, 1, 2, 7, 19, 42, 255]) {
      const { icmp, sent, counters } = icmpHost();
      icmp.sendError(3, 2, header({ protocol: PROTO_ICMP }), icmpBytes(type, 0, 0, new Uint8Array(4)), 0);
      expect(sent.length, `type ${type}`).toBe(0);
      expect(counters.get('icmp.error.suppressed')).toBe(1);
    }
  });
});

describe('the errors we send (RFC 792)', () => {
  it('carry type, code and rest of header, quote the datagram header and first 8 data bytes, go back to its source', () => {
    const { icmp, sent, counters } = icmpHost();
    const payload = Uint8Array.from({ length: 30 }, (_, i) => i + 1);
    icmp.sendError(3, 4, header({ id: 0xbeef, ttl: 9 }), payload, 0, 1400);
    expect(sent.length).toBe(1);
    const { packet, dst, protocol } = sent[0]!;
    expect([dst, protocol]).toEqual([PEER, PROTO_ICMP]);
    const m = ok(parseIcmp(packet.subarray(IPV4_HEADER_LEN)));
    expect([m.type, m.code, m.restOfHeader]).toEqual([3, 4, 1400]);
    expect(m.data.length).toBe(IPV4_HEADER_LEN + 8);
    // The quoted header as the datagram had it (only 28 of its 48 bytes quoted, so read field by field).
    const q = m.data;
    expect([(q[4]! << 8) | q[5]!, q[8], q[9], readIpv4(q, 12), readIpv4(q, 16), (q[2]! << 8) | q[3]!]).toEqual([0xbeef, 9, PROTO_UDP, PEER, US, 48]);
    expect(internetChecksum(q, 0, IPV4_HEADER_LEN)).toBe(0);
    expect(Array.from(m.data.subarray(IPV4_HEADER_LEN))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(counters.get('icmp.unreachable.out')).toBe(1);
  });

  it('are counted by type: unreachable, time exceeded, any other', () => {
    const { icmp, counters } = icmpHost();
    icmp.sendError(3, 3, header(), EIGHT, 0);
    icmp.sendError(11, 1, header(), EIGHT, 0);
    icmp.sendError(12, 0, header(), EIGHT, 0);
    expect([counters.get('icmp.unreachable.out'), counters.get('icmp.time-exceeded.out'), counters.get('icmp.error.out')]).toEqual([1, 1, 1]);
  });
});

describe('echo reply (RFC 792)', () => {
  it('keeps identifier, sequence and data, swaps the addresses, and lets IP fragment it only when it exceeds the MTU', () => {
    const { icmp, sent, counters } = icmpHost({ mtu: 100 });
    const small = icmpBytes(8, 0, 0x00070009, new Uint8Array(72).fill(3)); // 20 + 80 = 100: fits
    const big = icmpBytes(8, 0, 0x00070009, new Uint8Array(73).fill(3)); // 101: does not
    icmp.receive(header({ protocol: PROTO_ICMP }), small, 0);
    icmp.receive(header({ protocol: PROTO_ICMP }), big, 0);
    expect(sent.map((s) => s.df)).toEqual([true, false]);
    const reply = ok(parseIcmp(sent[0]!.packet.subarray(IPV4_HEADER_LEN)));
    expect([reply.type, reply.code, echoIdentifier(reply), echoSequence(reply), sent[0]!.dst]).toEqual([0, 0, 7, 9, PEER]);
    expect(Array.from(reply.data)).toEqual(Array.from(new Uint8Array(72).fill(3)));
    expect(internetChecksum(sent[0]!.packet, IPV4_HEADER_LEN)).toBe(0);
    expect(counters.get('icmp.echo')).toBe(2);
  });

  it('reads the 32-bit rest of header unsigned, identifier high and sequence low', () => {
    const m = ok(parseIcmp(icmpBytes(8, 0, 0xfffe0001, new Uint8Array(0))));
    expect([m.restOfHeader, echoIdentifier(m), echoSequence(m)]).toEqual([0xfffe0001, 0xfffe, 1]);
  });
});

describe('receiving errors', () => {
  it('parameter problem is counted and delivered like the others', () => {
    const { icmp, delivered, counters } = icmpHost();
    icmp.receive(header({ protocol: PROTO_ICMP }), icmpBytes(12, 0, 0x14000000, quote(EIGHT)), 0);
    expect(counters.get('icmp.parameter-problem.in')).toBe(1);
    expect(delivered.map((e) => [e.type, e.code, e.protocol])).toEqual([[12, 0, PROTO_TCP]]);
  });

  it('a bad quote is counted and not delivered', () => {
    const { icmp, delivered, counters } = icmpHost();
    icmp.receive(header({ protocol: PROTO_ICMP }), icmpBytes(3, 3, 0, quote(EIGHT, { src: PEER })), 0);
    expect(delivered).toEqual([]);
    expect(counters.get('icmp.drop.bad-quote')).toBe(1);
  });
});

describe('the quote of an error about our datagram (RFC 792, RFC 1191, RFC 5927)', () => {
  const parse = (q: Uint8Array, type = 3, code = 3, rest = 0) => parseQuotedDatagram(ok(parseIcmp(icmpBytes(type, code, rest, q))), US);

  it('exactly a header and 8 data bytes is enough; the first fragment (MF set, offset 0) and DF are fine', () => {
    expect(ok(parse(quote(EIGHT))).quoted.length).toBe(8);
    expect(ok(parse(quote(EIGHT, { flags: 0x2000 }))).protocol).toBe(PROTO_TCP);
    expect(ok(parse(quote(EIGHT, { flags: 0x4000 }))).protocol).toBe(PROTO_TCP);
    expect(parse(quote(EIGHT, { flags: 0x2001 }))).toEqual({ error: 'quote-fragment' });
    expect(parse(quote(EIGHT, { flags: 0x0100 }))).toEqual({ error: 'quote-fragment' });
    expect(parse(quote(EIGHT, { totalLength: 27 }))).toEqual({ error: 'quote-bad-header' });
    expect(ok(parse(quote(EIGHT, { totalLength: 28 }))).quoted.length).toBe(8);
  });

  it('the next-hop MTU is the low 16 bits of the rest of header; without one, the plateau below the datagram', () => {
    expect(ok(parse(quote(EIGHT, { totalLength: 1500 }), 3, 4, 0xabcd05dc)).mtu).toBe(1500);
    expect(ok(parse(quote(EIGHT, { totalLength: 1500 }), 3, 4, 0x00010000)).mtu).toBe(1492); // low bits 0: the plateau
    expect(ok(parse(quote(EIGHT, { totalLength: 28 }), 3, 4, 0)).mtu).toBe(68); // below every plateau
    expect(ok(parse(quote(EIGHT, { totalLength: 40000 }), 3, 4, 0)).mtu).toBe(32000);
    expect(ok(parse(quote(EIGHT, { totalLength: 1500 }), 3, 3, 576)).mtu).toBe(0); // not fragmentation-needed
    expect(ok(parse(quote(EIGHT, { totalLength: 1500 }), 11, 4, 576)).mtu).toBe(0);
  });

  it('gives the quoted addresses and protocol, and at most the quoted datagram as data', () => {
    const e = ok(parse(quote(Uint8Array.from({ length: 20 }, (_, i) => i), { totalLength: 30 })));
    expect([e.src, e.dst, e.protocol, e.quoted.length]).toEqual([US, PEER, PROTO_TCP, 10]);
  });
});

describe('debug logging (only when enabled)', () => {
  it('says why a message was dropped, an error refused, or an error not sent', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } });
    const { icmp } = icmpHost({ log: pino({ level: 'debug' }, sink) });
    icmp.receive(header({ protocol: PROTO_ICMP }), Uint8Array.from([8, 0, 0]), 0);
    icmp.receive(header({ protocol: PROTO_ICMP }), icmpBytes(3, 3, 0, quote(EIGHT, { src: PEER })), 0);
    icmp.sendError(3, 3, header({ dst: 0xffffffff }), EIGHT, 0);
    const quiet = icmpHost({ log: pino({ level: 'info' }, sink) }).icmp;
    quiet.receive(header({ protocol: PROTO_ICMP }), Uint8Array.from([8, 0, 0]), 0);
    quiet.sendError(3, 3, header({ dst: 0xffffffff }), EIGHT, 0);
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ msg: 'icmp drop', reason: 'truncated' }),
      expect.objectContaining({ msg: 'icmp error dropped', type: 3, code: 3, reason: 'quote-not-ours' }),
      expect.objectContaining({ msg: 'icmp error suppressed', type: 3, code: 3, why: 'broadcast-or-multicast' }),
    ]);
  });
});

