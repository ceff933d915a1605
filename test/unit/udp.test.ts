import { describe, expect, it } from 'vitest';
import { parseIpv4 as parseAddr } from '../../src/ip/addr.js';
import { checksumFinish, checksumPartial, pseudoHeaderSum } from '../../src/ip/checksum.js';
import { parseIcmp } from '../../src/ip/icmp.js';
import { IPV4_HEADER_LEN, parseIpv4, PROTO_UDP, writeIpv4Header } from '../../src/ip/ipv4.js';
import { IpLayer } from '../../src/ip/layer.js';
import { UdpLayer } from '../../src/udp/layer.js';
import type { RemoteInfo } from '../../src/udp/layer.js';
import { parseUdp, UDP_HEADER_LEN, writeUdp } from '../../src/udp/udp.js';
import { ok } from '../helpers/unit.js';

const A = parseAddr('10.0.0.1')!;
const B = parseAddr('10.0.0.2')!;

function datagram(data: Uint8Array, srcPort = 5000, dstPort = 53): Uint8Array {
  const buf = new Uint8Array(UDP_HEADER_LEN + data.length);
  buf.set(data, UDP_HEADER_LEN);
  writeUdp(buf, 0, { srcPort, dstPort, payloadLength: data.length, src: A, dst: B });
  return buf;
}

describe('UDP codec (RFC 768)', () => {
  it('round-trips ports, length, data and a verifying checksum', () => {
    const buf = datagram(Uint8Array.of(1, 2, 3, 4, 5), 40000, 7);
    const d = ok(parseUdp(buf, A, B));
    expect([d.srcPort, d.dstPort, d.length]).toEqual([40000, 7, 13]);
    expect(Array.from(d.payload)).toEqual([1, 2, 3, 4, 5]);
    expect(d.payload.buffer).toBe(buf.buffer);
    expect(checksumFinish(checksumPartial(buf, 0, buf.length, pseudoHeaderSum(A, B, PROTO_UDP, buf.length)))).toBe(0);
  });

  it('covers the pseudo-header: the wrong addresses fail the checksum', () => {
    const buf = datagram(Uint8Array.of(1, 2, 3));
    expect(parseUdp(buf, A, parseAddr('10.0.0.3')!)).toEqual({ error: 'bad-checksum' });
    expect(parseUdp(buf, B, A)).not.toHaveProperty('error'); // the sum is symmetric in src/dst
  });

  it('accepts a zero checksum as "none"', () => {
    const buf = datagram(Uint8Array.of(9, 9));
    buf[6] = 0;
    buf[7] = 0;
    buf[8] = 1; // would fail a real checksum
    expect(ok(parseUdp(buf, A, B)).payload[0]).toBe(1);
  });

  it('sends a computed checksum of zero as 0xffff', () => {
    // Search 2-byte payloads for one whose checksum comes out as zero.
    let found: Uint8Array | undefined;
    for (let v = 0; v < 0x10000 && !found; v++) {
      const buf = datagram(Uint8Array.of(v >>> 8, v & 0xff));
      if (buf[6] === 0xff && buf[7] === 0xff) found = buf;
    }
    expect(found).toBeDefined();
    expect(parseUdp(found!, A, B)).not.toHaveProperty('error');
  });

  it('validates the length field and trims trailing bytes', () => {
    expect(parseUdp(new Uint8Array(7), A, B)).toEqual({ error: 'truncated' });
    const short = datagram(new Uint8Array(4));
    short[5] = 7; // length 7 < header
    expect(parseUdp(short, A, B)).toEqual({ error: 'bad-length' });
    const long = datagram(new Uint8Array(4));
    long[5] = 13; // longer than the 12 bytes we have
    expect(parseUdp(long, A, B)).toEqual({ error: 'truncated' });
    const padded = new Uint8Array(20);
    padded.set(datagram(Uint8Array.of(1, 2)));
    padded.fill(0xee, 10);
    expect(Array.from(ok(parseUdp(padded, A, B)).payload)).toEqual([1, 2]);
    const flipped = datagram(Uint8Array.of(1, 2, 3));
    flipped[9]! ^= 0x10;
    expect(parseUdp(flipped, A, B)).toEqual({ error: 'bad-checksum' });
  });
});

/** Two hosts wired back to back; packets are queued and pumped so no call re-enters. */
function twoHosts(mtu = 1500) {
  const queue: Array<{ to: IpLayer; packet: Uint8Array }> = [];
  const sentByB: Uint8Array[] = [];
  let now = 0;
  const ipA: IpLayer = new IpLayer({ addr: A, mtu, transmit: (p) => queue.push({ to: ipB, packet: p }) });
  const ipB: IpLayer = new IpLayer({
    addr: B,
    mtu,
    transmit: (p) => {
      sentByB.push(p);
      queue.push({ to: ipA, packet: p });
    },
  });
  const udpA = new UdpLayer(ipA);
  const udpB = new UdpLayer(ipB);
  ipA.register(PROTO_UDP, udpA);
  ipB.register(PROTO_UDP, udpB);
  const pump = () => {
    for (let i = 0; i < 10_000 && queue.length > 0; i++) {
      const { to, packet } = queue.shift()!;
      to.receive(packet, ++now);
    }
  };
  return { ipA, ipB, udpA, udpB, pump, sentByB, now: () => now };
}

describe('UdpLayer', () => {
  it('echoes a datagram between two stacks', () => {
    const h = twoHosts();
    h.udpB.bind(7, (data, rinfo) => h.udpB.send(data, rinfo.port, rinfo.address, 7, h.now()));
    const replies: Array<[string, RemoteInfo]> = [];
    const client = h.udpA.bind(0, (data, rinfo) => replies.push([Buffer.from(data).toString(), rinfo]));
    expect(client.port).toBeGreaterThanOrEqual(49152);
    h.udpA.send(Buffer.from('hello, udp'), 7, '10.0.0.2', client.port, 0);
    h.pump();
    expect(replies).toEqual([['hello, udp', { address: '10.0.0.2', port: 7 }]]);
    expect(h.udpB.stats()).toMatchObject({ 'udp.in': 1, 'udp.delivered': 1, 'udp.out': 1 });
    expect(h.udpA.stats()).toMatchObject({ 'udp.in': 1, 'udp.delivered': 1, 'udp.out': 1 });
  });

  it('answers a datagram to an unbound port with ICMP Port Unreachable quoting it', () => {
    const h = twoHosts();
    h.udpA.send(Uint8Array.of(1, 2, 3), 9999, '10.0.0.2', 4444, 0);
    h.pump();
    expect(h.udpB.stats()['udp.drop.no-port']).toBe(1);
    expect(h.sentByB).toHaveLength(1);
    const p = ok(parseIpv4(h.sentByB[0]!));
    expect([p.header.src, p.header.dst]).toEqual([B, A]);
    const m = ok(parseIcmp(p.payload));
    expect([m.type, m.code]).toEqual([3, 3]);
    // The quoted UDP header: source port 4444, destination 9999, length 11.
    const udpHeader = m.data.subarray(20, 28);
    expect([(udpHeader[0]! << 8) | udpHeader[1]!, (udpHeader[2]! << 8) | udpHeader[3]!, (udpHeader[4]! << 8) | udpHeader[5]!]).toEqual([4444, 9999, 11]);
    expect(h.ipA.stats()['icmp.unreachable.in']).toBe(1);
  });

  it('hands the ICMP error back to the port that sent the quoted datagram', () => {
    const h = twoHosts();
    const errors: Array<[number, number, RemoteInfo]> = [];
    h.udpA.bind(4444, () => {}, (err, to) => errors.push([err.type, err.code, to]));
    h.udpA.send(Uint8Array.of(1, 2, 3), 9999, '10.0.0.2', 4444, 0);
    h.pump();
    expect(errors).toEqual([[3, 3, { address: '10.0.0.2', port: 9999 }]]);
    // Nobody on the port any more: counted, not delivered.
    h.udpA.send(Uint8Array.of(1), 9999, '10.0.0.2', 5555, 0);
    h.pump();
    expect(h.udpA.stats()['udp.icmp-error.no-port']).toBe(1);
  });

  it('drops bad datagrams, counted, without an ICMP answer', () => {
    const h = twoHosts();
    let got = 0;
    h.udpB.bind(53, () => got++);
    const udp = datagram(Uint8Array.of(1, 2, 3, 4));
    udp[10]! ^= 1;
    const pkt = new Uint8Array(IPV4_HEADER_LEN + udp.length);
    pkt.set(udp, IPV4_HEADER_LEN);
    writeIpv4Header(pkt, 0, { totalLength: pkt.length, id: 1, protocol: PROTO_UDP, src: A, dst: B });
    h.ipB.receive(pkt, 0);
    expect(got).toBe(0);
    expect(h.udpB.stats()['udp.drop.bad-checksum']).toBe(1);
    expect(h.sentByB).toHaveLength(0);
  });

  it('sends a datagram bigger than the MTU as fragments, reassembled on the far side', () => {
    const h = twoHosts(576);
    const big = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);
    const got: Uint8Array[] = [];
    h.udpB.bind(9000, (data) => got.push(data.slice()));
    h.udpA.send(big, 9000, '10.0.0.2', 1234, 0);
    h.pump();
    expect(got).toEqual([big]);
    expect(h.ipA.stats()['ip.frag.out']).toBe(6);
    expect(h.ipB.stats()['ip.reassembled']).toBe(1);
  });

  it('reports user errors Node-style', () => {
    const h = twoHosts();
    const b = h.udpB.bind(53, () => {});
    expect(() => h.udpB.bind(53, () => {})).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    b.close();
    b.close(); // idempotent
    expect(h.udpB.bind(53, () => {}).port).toBe(53); // free again
    expect(() => h.udpA.bind(70000, () => {})).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => h.udpA.send(new Uint8Array(1), 53, 'not-an-ip', 1, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => h.udpA.send(new Uint8Array(1), 0, '10.0.0.2', 1, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => h.udpA.send(new Uint8Array(65508), 53, '10.0.0.2', 1, 0)).toThrow(expect.objectContaining({ code: 'EMSGSIZE' }));
  });

  it('hands out distinct ephemeral ports', () => {
    const h = twoHosts();
    const ports = new Set(Array.from({ length: 100 }, () => h.udpA.bind(0, () => {}).port));
    expect(ports.size).toBe(100);
    for (const p of ports) expect(p).toBeGreaterThanOrEqual(49152);
  });
});
