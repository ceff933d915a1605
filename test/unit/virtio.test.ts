/**
 * The virtio-net header codec (src/link/virtio.ts): byte layout, hostile headers from the kernel
 * side (dropped with a reason, never trusted, never a throw), checksum completion, and what software
 * segmentation (the kernel's GSO, emulated) makes of our super-segments at every size boundary.
 */
import { describe, expect, it } from 'vitest';
import { pseudoHeaderSum } from '../../src/ip/checksum.js';
import { IPV4_HEADER_LEN, PROTO_TCP, PROTO_UDP, parseIpv4, writeIpv4Header } from '../../src/ip/ipv4.js';
import { seededRandom } from '../../src/runtime/random.js';
import { ACK, CWR, FIN, PSH, TCP_HEADER_LEN, optionsLength, parseTcp, writeTcp } from '../../src/tcp/segment.js';
import type { TcpOptions } from '../../src/tcp/segment.js';
import type { VirtioNetHdr } from '../../src/link/virtio.js';
import {
  VIRTIO_DROP_REASONS,
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP,
  VIRTIO_NET_HDR_LEN,
  checkRx,
  completeChecksum,
  readVirtioHdr,
  segment,
  tcpTxHeader,
  writeVirtioHdr,
} from '../../src/link/virtio.js';
import { ok } from '../helpers/unit.js';
import { ipv4, udp } from '../helpers/wire.js';

const SRC = 0x0a000001;
const DST = 0x0a000002;

/** A TCP/IPv4 packet the way Connection.emitSegment builds it with offload: partial checksum. */
function superSegment(payload: Uint8Array, opts: { flags?: number; options?: TcpOptions; id?: number; seq?: number } = {}): Uint8Array {
  const options = opts.options ?? {};
  const thl = TCP_HEADER_LEN + optionsLength(options);
  const p = new Uint8Array(IPV4_HEADER_LEN + thl + payload.length);
  p.set(payload, IPV4_HEADER_LEN + thl);
  const fields = { srcPort: 40000, dstPort: 80, seq: opts.seq ?? 0xfffff000, ack: 7, flags: opts.flags ?? ACK, window: 512, options };
  writeTcp(p, IPV4_HEADER_LEN, fields, payload.length, SRC, DST, true);
  writeIpv4Header(p, 0, { totalLength: p.length, id: opts.id ?? 0xfffe, df: true, protocol: PROTO_TCP, src: SRC, dst: DST });
  return p;
}

function bytes(n: number, seed: number): Uint8Array {
  const r = seededRandom(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

const hdr = (h: Partial<VirtioNetHdr>): VirtioNetHdr => ({ flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0, ...h });

describe('virtio-net header codec', () => {
  it('lays the fields out as struct virtio_net_hdr, 16-bit fields little-endian, 10 bytes', () => {
    const b = new Uint8Array(VIRTIO_NET_HDR_LEN + 2).fill(0xee);
    writeVirtioHdr(b, 1, { flags: 1, gsoType: 1, hdrLen: 0x0034, gsoSize: 0x05a8, csumStart: 0x0014, csumOffset: 0x0010 });
    expect([...b]).toEqual([0xee, 1, 1, 0x34, 0, 0xa8, 0x05, 0x14, 0, 0x10, 0, 0xee]);
    expect(readVirtioHdr(b, 1)).toEqual({ flags: 1, gsoType: 1, hdrLen: 0x34, gsoSize: 0x5a8, csumStart: 0x14, csumOffset: 0x10 });
  });

  it('an all-zero header reads as no header, and writing none writes zeros', () => {
    const b = new Uint8Array(VIRTIO_NET_HDR_LEN).fill(9);
    writeVirtioHdr(b, 0, undefined);
    expect([...b]).toEqual(new Array(10).fill(0));
    expect(readVirtioHdr(b, 0)).toBeUndefined();
  });

  it('round-trips every field at its extremes', () => {
    for (const v of [0, 1, 0xff, 0x100, 0xfffe, 0xffff]) {
      const h = { flags: v & 0xff, gsoType: (v >>> 8) & 0xff, hdrLen: v, gsoSize: v, csumStart: v, csumOffset: v };
      const b = new Uint8Array(VIRTIO_NET_HDR_LEN);
      writeVirtioHdr(b, 0, h);
      expect(readVirtioHdr(b, 0) ?? hdr({})).toEqual(h);
    }
  });
});

describe('received headers: hostile values are dropped with a reason, never trusted', () => {
  const seg = superSegment(bytes(3000, 1));
  const tcpOk = { csumStart: 20, csumOffset: 16, hdrLen: 40 };

  it('gso_size 0 on a TCP super-segment', () => {
    expect(checkRx(hdr({ flags: 1, gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 0, ...tcpOk }), seg)).toEqual({ drop: 'gso-size' });
  });

  it('hdr_len past the end of the packet', () => {
    expect(checkRx(hdr({ flags: 1, gsoType: 1, gsoSize: 1448, ...tcpOk, hdrLen: seg.length + 1 }), seg)).toEqual({ drop: 'hdr-len' });
    expect(checkRx(hdr({ flags: 1, gsoType: 1, gsoSize: 1448, ...tcpOk, hdrLen: seg.length }), seg)).toBe('trusted');
  });

  it('csum_start past the end, or the checksum field past it, or inside the IPv4 header', () => {
    expect(checkRx(hdr({ flags: 1, csumStart: seg.length, csumOffset: 0 }), seg)).toEqual({ drop: 'csum-range' });
    expect(checkRx(hdr({ flags: 1, csumStart: 20, csumOffset: seg.length - 21 }), seg)).toEqual({ drop: 'csum-range' });
    expect(checkRx(hdr({ flags: 1, csumStart: 0xffff, csumOffset: 0xffff }), seg)).toEqual({ drop: 'csum-range' });
    expect(checkRx(hdr({ flags: 1, csumStart: 10, csumOffset: 16 }), seg)).toEqual({ drop: 'csum-range' });
    // Right at the end is fine: the field's two bytes are the packet's last two.
    expect(checkRx(hdr({ flags: 1, csumStart: 20, csumOffset: seg.length - 22 }), seg)).toBe('complete');
  });

  it('TCP GSO whose checksum is not the TCP checksum field', () => {
    expect(checkRx(hdr({ flags: 1, gsoType: 1, gsoSize: 1448, hdrLen: 40, csumStart: 20, csumOffset: 6 }), seg)).toEqual({ drop: 'csum-range' });
  });

  it('unknown gso_type, or one we never asked for (TCPV6, UDP), or the ECN bit alone', () => {
    for (const t of [2, 5, 0x42, 0x7f, VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_GSO_UDP, VIRTIO_NET_HDR_GSO_ECN, 0xff]) {
      expect(checkRx(hdr({ flags: 1, gsoType: t, gsoSize: 1448, ...tcpOk }), seg), `gso_type ${t}`).toEqual({ drop: 'gso-type' });
    }
    // TCPV4 with the ECN bit is a TCP super-segment that had CWR set.
    expect(checkRx(hdr({ flags: 1, gsoType: VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, gsoSize: 1448, ...tcpOk }), seg)).toBe('trusted');
  });

  it('GSO on a packet that is not TCP/IPv4', () => {
    const d = ipv4({ src: SRC, dst: DST, protocol: PROTO_UDP }, udp({ src: SRC, dst: DST, srcPort: 5, dstPort: 53 }, bytes(3000, 2)));
    expect(checkRx(hdr({ flags: 1, gsoType: 1, gsoSize: 1448, hdrLen: 28, csumStart: 20, csumOffset: 6 }), d)).toEqual({ drop: 'gso-not-tcp' });
    expect(checkRx(hdr({ flags: 1, gsoType: 1, gsoSize: 1448, hdrLen: 0 }), new Uint8Array(4))).toEqual({ drop: 'gso-not-tcp' });
  });

  it('what the kernel really sends is accepted: NEEDS_CSUM on TCP and DATA_VALID are trusted, NEEDS_CSUM on UDP is completed', () => {
    expect(checkRx(undefined, seg)).toBe('plain');
    expect(checkRx(hdr({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, ...tcpOk }), seg)).toBe('trusted');
    expect(checkRx(hdr({ flags: VIRTIO_NET_HDR_F_DATA_VALID }), seg)).toBe('trusted');
    expect(checkRx(hdr({ flags: 1, gsoType: 1, gsoSize: 1448, ...tcpOk }), seg)).toBe('trusted');
    const d = ipv4({ src: SRC, dst: DST, protocol: PROTO_UDP }, udp({ src: SRC, dst: DST, srcPort: 5, dstPort: 53 }, bytes(33, 3)));
    expect(checkRx(hdr({ flags: 1, csumStart: 20, csumOffset: 6 }), d)).toBe('complete');
    expect(checkRx(hdr({ hdrLen: 40 }), seg)).toBe('plain'); // no flag, no GSO: verified as usual
  });

  it('random headers against random packets never throw, and a verdict is always one of the known ones', () => {
    const r = seededRandom(77);
    const verdicts = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const pick = (): number => [0, 1, 2, 16, 20, 40, 0xffff, (r() * 70000) | 0][(r() * 8) | 0]! & 0xffff;
      const h = { flags: (r() * 256) | 0, gsoType: [0, 1, 3, 4, 0x81, (r() * 256) | 0][(r() * 6) | 0]!, hdrLen: pick(), gsoSize: pick(), csumStart: pick(), csumOffset: pick() };
      const p = r() < 0.5 ? seg : bytes((r() * 100) | 0, i);
      const v = checkRx(h, p);
      const name = typeof v === 'string' ? v : v.drop;
      expect(['plain', 'trusted', 'complete', ...VIRTIO_DROP_REASONS]).toContain(name);
      verdicts.add(name);
      if (typeof v === 'string' && v !== 'plain' && h.flags & 1) expect(h.csumStart + h.csumOffset + 2).toBeLessThanOrEqual(p.length);
    }
    expect(verdicts.size).toBeGreaterThan(6);
  });
});

describe('checksum completion (NEEDS_CSUM)', () => {
  it('a partial TCP checksum completed in place verifies', () => {
    const p = superSegment(bytes(1001, 4)); // odd length
    const before = ok(parseIpv4(p));
    expect('error' in parseTcp(before.payload, SRC, DST)).toBe(true); // only the pseudo-header sum is there
    completeChecksum(p, 20, 16);
    const ip = ok(parseIpv4(p));
    expect(ok(parseTcp(ip.payload, SRC, DST)).payload.length).toBe(1001);
  });

  it('a partial UDP checksum completed in place verifies (and is never 0)', () => {
    const d = ipv4({ src: SRC, dst: DST, protocol: PROTO_UDP }, udp({ src: SRC, dst: DST, srcPort: 5, dstPort: 53 }, bytes(40, 5)));
    const good = d.slice();
    // The host's partial checksum: the pseudo-header sum only.
    const v = pseudoHeaderSum(SRC, DST, PROTO_UDP, d.length - 20);
    d[26] = v >>> 8;
    d[27] = v & 0xff;
    completeChecksum(d, 20, 6);
    expect([...d]).toEqual([...good]);
  });
});

describe('segmentation of a super-segment (what the kernel makes of it)', () => {
  const MSS = 1448;
  const TS: TcpOptions = { timestamp: { value: 123, echo: 456 } };

  /** Segment, then check every piece as a receiver would; returns the pieces' payload lengths. */
  function cut(len: number, flags: number, options: TcpOptions = TS, mss = MSS): number[] {
    const payload = bytes(len, len);
    const p = superSegment(payload, { flags, options });
    const thl = TCP_HEADER_LEN + optionsLength(options);
    const h = tcpTxHeader(IPV4_HEADER_LEN, thl, len, mss);
    expect(h.gsoType).toBe(len > mss ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_NONE);
    expect(checkRx(h, p)).toBe('trusted'); // our own headers pass our own checks
    const pieces = segment(p, h);
    const lens: number[] = [];
    let seq = 0xfffff000;
    const joined: number[] = [];
    pieces.forEach((piece, i) => {
      const ip = ok(parseIpv4(piece)); // header checksum and lengths verified
      expect(ip.header.df).toBe(true);
      expect(ip.header.id).toBe((0xfffe + i) & 0xffff); // consecutive IDs, wrapping
      expect(piece.length).toBeLessThanOrEqual(IPV4_HEADER_LEN + thl + mss);
      const t = ok(parseTcp(ip.payload, SRC, DST)); // checksum verified
      expect(t.seq).toBe(seq);
      expect(t.options.timestamp).toEqual(options.timestamp);
      const last = i === pieces.length - 1;
      expect(t.flags & (FIN | PSH)).toBe(last ? flags & (FIN | PSH) : 0);
      expect(t.flags & CWR).toBe(i === 0 ? flags & CWR : 0);
      expect(t.flags & ACK).toBe(ACK);
      seq = (seq + t.payload.length) >>> 0;
      lens.push(t.payload.length);
      joined.push(...t.payload);
    });
    expect(Buffer.from(joined).equals(Buffer.from(payload))).toBe(true);
    return lens;
  }

  it('at the boundaries: one byte, one MSS, one MSS + 1, whole multiples, a short tail', () => {
    expect(cut(1, ACK | PSH)).toEqual([1]);
    expect(cut(MSS, ACK)).toEqual([MSS]);
    expect(cut(MSS + 1, ACK | PSH)).toEqual([MSS, 1]);
    expect(cut(2 * MSS - 1, ACK)).toEqual([MSS, MSS - 1]);
    expect(cut(3 * MSS, ACK | PSH | FIN)).toEqual([MSS, MSS, MSS]);
    expect(cut(10 * MSS + 77, ACK | CWR | PSH)).toEqual([...new Array(10).fill(MSS), 77]);
  });

  it('the largest super-segment (45 pieces of 1448 in one 64 KiB IPv4 packet)', () => {
    const lens = cut(45 * MSS, ACK | PSH);
    expect(lens).toHaveLength(45);
    expect(IPV4_HEADER_LEN + 32 + 45 * MSS).toBeLessThanOrEqual(65535);
  });

  it('without options, and with a tiny MSS', () => {
    expect(cut(4000, ACK, {}, 1460)).toEqual([1460, 1460, 1080]);
    expect(cut(100, ACK | FIN, {}, 8)).toEqual([...new Array(12).fill(8), 4]);
  });

  it('a packet without GSO only has its checksum completed, on a copy', () => {
    const p = superSegment(bytes(500, 9));
    const h = tcpTxHeader(IPV4_HEADER_LEN, TCP_HEADER_LEN, 500, MSS);
    const [only, ...rest] = segment(p, h);
    expect(rest).toEqual([]);
    expect(ok(parseTcp(ok(parseIpv4(only!)).payload, SRC, DST)).payload.length).toBe(500);
    expect('error' in parseTcp(ok(parseIpv4(p)).payload, SRC, DST)).toBe(true);
  });
});
