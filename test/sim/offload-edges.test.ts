/**
 * TCP over links that do offload (emulated by MemoryLink, src/link/virtio.ts), at the edges: a FIN
 * riding on a super-segment, a super-segment from the peer that crosses our receive window, the loss
 * of one wire segment cut from a super-segment (only that part is sent again), the delayed-ACK rule
 * counted in bytes, and hostile offload headers from the link. Two stacks on a virtual clock.
 */
import { describe, expect, it } from 'vitest';
import { IPV4_HEADER_LEN, PROTO_TCP, parseIpv4, writeIpv4Header } from '../../src/ip/ipv4.js';
import type { Link, PacketBatchHandler, PacketMeta } from '../../src/link/link.js';
import { MemoryLink } from '../../src/link/memory.js';
import { VIRTIO_NET_HDR_GSO_TCPV4, segment, tcpTxHeader } from '../../src/link/virtio.js';
import { VirtualClock } from '../../src/runtime/clock.js';
import { Stack } from '../../src/stack.js';
import type { TcpSegment } from '../../src/tcp/segment.js';
import { ACK, FIN, TCP_HEADER_LEN, parseTcp, writeTcp } from '../../src/tcp/segment.js';
import type { Connection } from '../../src/tcp/connection.js';
import { A_ADDR, B_ADDR, createSim, randomBytes } from '../helpers/sim.js';
import { parseIpv4 as parseAddr } from '../../src/ip/addr.js';

/** Every TCP segment a stack sends, as parsed (checksums not verified: they may be partial). */
function capture(stack: Stack): Array<{ seg: TcpSegment; meta: boolean }> {
  const out: Array<{ seg: TcpSegment; meta: boolean }> = [];
  stack.packetTap = (p, dir) => {
    if (dir !== 'out') return;
    const ip = parseIpv4(p);
    if ('error' in ip || ip.header.protocol !== PROTO_TCP) return;
    const seg = parseTcp(ip.payload, ip.header.src, ip.header.dst, false);
    if (!('error' in seg)) out.push({ seg, meta: stack.offload });
  };
  return out;
}

function connOf(stack: Stack): Connection {
  const [c] = stack.tcp.connectionList();
  if (!c) throw new Error('no connection');
  return c;
}

describe('TCP with offload at the edges', () => {
  it('a FIN rides on the last super-segment: the peer gets every byte, then the end', async () => {
    const { clock, a, b } = createSim({ offload: true });
    const out = capture(a);
    const data = randomBytes(20 * 1448, 3); // a whole number of MSS-sized pieces, written with end()
    const got: Buffer[] = [];
    let ended = false;
    b.createServer((s) => {
      s.on('data', (d: Buffer) => got.push(d));
      s.on('end', () => ((ended = true), s.end()));
    }).listen(80);
    await clock.sleep(1);
    const c = a.connect({ host: B_ADDR, port: 80 });
    c.on('connect', () => c.end(data));
    await clock.run(() => !ended, 60_000);
    expect(Buffer.concat(got).equals(data)).toBe(true);
    const finSeg = out.find((o) => o.seg.flags & FIN)!.seg;
    expect(finSeg.payload.length).toBeGreaterThan(1448); // the FIN left on a super-segment
    expect(finSeg.payload.length % 1448).toBe(0);
  });

  it('super-segments are whole MSS-sized pieces (timestamps included) within cwnd and the peer window; a short tail goes alone', async () => {
    const { clock, a, b } = createSim({ offload: true, tcpB: { rcvBuf: 1 << 20 } });
    const out = capture(a);
    const data = randomBytes(300_000 + 123, 4);
    let n = 0;
    b.createServer((s) => s.on('data', (d: Buffer) => (n += d.length))).listen(80);
    await clock.sleep(1);
    const c = a.connect({ host: B_ADDR, port: 80 });
    c.on('connect', () => c.write(data));
    await clock.run(() => n < data.length, 60_000);
    const mss = connOf(a).snd.mss;
    expect(mss).toBe(1448); // 1500 - 40 - 12 bytes of timestamps
    const data0 = out.filter((o) => o.seg.payload.length > 0).map((o) => o.seg.payload.length);
    expect(Math.max(...data0)).toBeGreaterThan(10 * mss);
    expect(Math.max(...data0)).toBeLessThanOrEqual(45 * mss); // 64 KiB IPv4 packets at most
    for (const len of data0.slice(0, -1)) expect(len % mss, `segment of ${len}`).toBe(0);
    expect(data0.at(-1)).toBe((300_000 + 123) % mss); // the tail
    // The first flight is the initial window (10 segments), as one super-segment.
    expect(data0[0]).toBe(10 * mss);
  });

  it('a super-segment from the peer crossing our receive window is trimmed to it; the ACK says what we took', async () => {
    const clock = new VirtualClock(1_000_000);
    const [la, lb] = MemoryLink.pair(clock, 1500, { offload: true });
    const b = new Stack({ link: lb, addr: parseAddr(B_ADDR)!, clock, tcp: { rcvBuf: 20_000, timestamps: false, sack: false } });
    const a = new Stack({ link: la, addr: parseAddr(A_ADDR)!, clock, tcp: { timestamps: false, sack: false } });
    let taken = 0;
    b.createServer((s) => {
      s.pause(); // nobody reads: the window stays what it was
      s.on('data', (d: Buffer) => (taken += d.length));
    }).listen(80);
    await clock.sleep(1);
    a.connect({ host: B_ADDR, port: 80 });
    await clock.sleep(10);
    const ca = connOf(a);
    const cb = connOf(b);
    const wnd = cb.rcv.window();
    expect(wnd).toBeGreaterThan(0);
    expect(wnd).toBeLessThan(30_000);
    const before = cb.rcv.nxt;
    // A forged super-segment, as the peer's kernel could send it: 40 pieces of 1460, far past the window.
    const payload = randomBytes(40 * 1460, 5);
    const p = new Uint8Array(IPV4_HEADER_LEN + TCP_HEADER_LEN + payload.length);
    p.set(payload, IPV4_HEADER_LEN + TCP_HEADER_LEN);
    const fields = { srcPort: ca.localPort, dstPort: 80, seq: ca.snd.nxt, ack: ca.rcv.nxt, flags: ACK | FIN, window: 1000 };
    writeTcp(p, IPV4_HEADER_LEN, fields, payload.length, ca.localAddr, ca.remoteAddr, true);
    writeIpv4Header(p, 0, { totalLength: p.length, id: 1, df: true, protocol: PROTO_TCP, src: ca.localAddr, dst: ca.remoteAddr });
    const outB = capture(b);
    b.receive([p], [tcpTxHeader(IPV4_HEADER_LEN, TCP_HEADER_LEN, payload.length, 1460)]);
    expect((cb.rcv.nxt - before) >>> 0).toBe(wnd); // exactly the window, and the FIN beyond it ignored
    expect(cb.finReceived).toBe(false);
    expect(cb.bytesReceived).toBe(wnd);
    const ack = outB.at(-1)!.seg;
    expect(ack.ack).toBe(cb.rcv.nxt);
    expect(b.stats()['link.offload.gso.in']).toBe(1);
    expect(taken).toBe(0);
  });

  it('one lost wire segment of a super-segment: only that MSS is sent again, and the data arrives whole', async () => {
    const clock = new VirtualClock(1_000_000);
    const [la, lb] = MemoryLink.pair(clock, 1500, { offload: [true, false] });
    // The "wire" between them: A's super-segments cut into segments, and the 5th data segment dropped once.
    let dataSegments = 0;
    let dropped = 0;
    const wire: Link = {
      mtu: 1500,
      offload: true,
      onReceive: (h: PacketBatchHandler) => la.onReceive(h),
      send: (packets: Uint8Array[], meta?: ReadonlyArray<PacketMeta | undefined>) => {
        const pieces: Uint8Array[] = [];
        packets.forEach((p, i) => pieces.push(...(meta?.[i] ? segment(p, meta[i]!) : [p])));
        la.send(
          pieces.filter((p) => {
            if (p.length <= 52 + 20) return true;
            dataSegments++;
            if (dataSegments === 5) return (dropped++, false);
            return true;
          }),
        );
      },
      close: () => la.close(),
    };
    const a = new Stack({ link: wire, addr: parseAddr(A_ADDR)!, clock });
    const b = new Stack({ link: lb, addr: parseAddr(B_ADDR)!, clock });
    expect(a.offload).toBe(true);
    const data = randomBytes(200_000, 6);
    const got: Buffer[] = [];
    b.createServer((s) => s.on('data', (d: Buffer) => got.push(d))).listen(80);
    await clock.sleep(1);
    const c = a.connect({ host: B_ADDR, port: 80 });
    c.on('connect', () => c.write(data));
    await clock.run(() => Buffer.concat(got).length < data.length, 60_000);
    expect(dropped).toBe(1);
    expect(Buffer.concat(got).equals(data)).toBe(true);
    const st = a.stats();
    expect(st['tcp.out.gso']).toBeGreaterThan(0);
    expect(st['tcp.retransmit']).toBe(1); // the one MSS, not the super-segment it came from
    expect(st['tcp.rto'] ?? 0).toBe(0); // SACK recovery found it
  });

  it('delayed ACK counts bytes: one super-segment of two MSS or more is ACKed at once (RFC 5681 §4.2, every second full-sized segment)', async () => {
    const { clock, a, b } = createSim({ offload: true });
    const outB = capture(b);
    b.createServer(() => {}).listen(80);
    await clock.sleep(1);
    const c = a.connect({ host: B_ADDR, port: 80 });
    await clock.run(() => connOf(a).state !== 'ESTABLISHED', 1000);
    await clock.sleep(100);
    const acksBefore = outB.length;
    c.write(randomBytes(3 * 1448, 7));
    await clock.sleep(1); // less than the 40 ms delayed-ACK timer
    expect(outB.length).toBe(acksBefore + 1);
    const t = clock.now();
    c.write(randomBytes(1000, 8)); // less than two MSS: the ACK waits for the timer
    await clock.run(() => outB.length === acksBefore + 1, 1000);
    expect(clock.now() - t).toBeGreaterThanOrEqual(40);
  });

  it('hostile offload headers from the link are dropped and counted, and nothing reaches TCP', () => {
    const clock = new VirtualClock(1_000_000);
    const [, lb] = MemoryLink.pair(clock, 1500, { offload: true });
    const b = new Stack({ link: lb, addr: parseAddr(B_ADDR)!, clock });
    const payload = randomBytes(5000, 9);
    const p = new Uint8Array(IPV4_HEADER_LEN + TCP_HEADER_LEN + payload.length);
    p.set(payload, 40);
    writeTcp(p, 20, { srcPort: 1234, dstPort: 80, seq: 1, ack: 1, flags: ACK, window: 100 }, payload.length, parseAddr(A_ADDR)!, parseAddr(B_ADDR)!, true);
    writeIpv4Header(p, 0, { totalLength: p.length, id: 1, df: true, protocol: PROTO_TCP, src: parseAddr(A_ADDR)!, dst: parseAddr(B_ADDR)! });
    const good = tcpTxHeader(20, 20, payload.length, 1460);
    lb.deliver(
      [p, p, p, p, p],
      [
        { ...good, gsoSize: 0 },
        { ...good, hdrLen: p.length + 1 },
        { ...good, csumStart: p.length },
        { ...good, gsoType: 0x42 },
        { ...good, gsoType: VIRTIO_NET_HDR_GSO_TCPV4, csumOffset: 2 },
      ],
    );
    const st = b.stats();
    expect(st['link.offload.drop.gso-size']).toBe(1);
    expect(st['link.offload.drop.hdr-len']).toBe(1);
    expect(st['link.offload.drop.csum-range']).toBe(2);
    expect(st['link.offload.drop.gso-type']).toBe(1);
    expect(st['ip.in']).toBe(0);
    expect(st['tcp.in'] ?? 0).toBe(0);
    // The same packet with a truthful header reaches TCP (which answers the stray ACK with a RST).
    lb.deliver([p], [good]);
    expect(b.stats()['tcp.in']).toBe(1);
  });
});
