/**
 * How large the super-segments are that TCP hands a link that does offload (src/link/virtio.ts):
 * whole MSS-sized pieces, at most GSO_MAX_SEGS of them, in one IPv4 packet of at most 64 KiB
 * counting the header every piece repeats (timestamps included); a tail shorter than the MSS and a
 * small write go on their own; retransmissions stay one MSS. The peer sees the wire as tcpdump on
 * the host would (the link cuts every super-segment); the stack's own packets are watched on its tap.
 */
import { describe, expect, it } from 'vitest';
import { IPV4_HEADER_LEN, PROTO_TCP, parseIpv4 } from '../../src/ip/ipv4.js';
import { parseTcp } from '../../src/tcp/segment.js';
import { NewReno } from '../../src/tcp/congestion.js';
import type { CongestionFactory } from '../../src/tcp/congestion.js';
import type { ScriptHost } from '../helpers/script.js';
import { script, scriptHost } from '../helpers/script.js';

/** A controller whose window is never the limit here (the sizes under test are the offload's). */
class WideOpen extends NewReno {
  constructor(mss: number) {
    super(mss);
    this.cwnd = 200 * mss;
  }
  override setMss(mss: number): void {
    super.setMss(mss);
    this.cwnd = 200 * mss;
  }
  override onIdleRestart(): void {}
}
const wideOpen: CongestionFactory = (mss) => new WideOpen(mss);

/** TCP payload lengths of the data packets the stack hands its link, in order. */
function tapPayloads(h: ScriptHost): number[] {
  const lens: number[] = [];
  h.stack.packetTap = (p, dir) => {
    if (dir !== 'out') return;
    const ip = parseIpv4(p);
    if ('error' in ip || ip.header.protocol !== PROTO_TCP) return;
    // Not verified: a super-segment's checksum is partial, the link completes it.
    const seg = parseTcp(ip.payload, ip.header.src, ip.header.dst, false);
    if (!('error' in seg) && seg.payload.length > 0) lens.push(seg.payload.length);
  };
  return lens;
}

/** Passive open from a peer with a large window (wscale 7): with or without timestamps. */
function open(h: ScriptHost, mss: number, ts: boolean) {
  h.listen();
  return ts
    ? script(h)
        .recv(`S 0:0(0) win 65535 <mss ${mss},sackOK,TS val 1000 ecr 0,nop,wscale 7>`)
        .send('S. 0:0(0) ack 1 <*>')
        .after(20)
        .recv('. 1:1(0) ack 1 win 4000 <TS val 1020 ecr 0>')
    : script(h)
        .recv(`S 0:0(0) win 65535 <mss ${mss},nop,wscale 7>`)
        .send('S. 0:0(0) ack 1 <*>')
        .after(20)
        .recv('. 1:1(0) ack 1 win 4000');
}

describe('super-segment size with offload', () => {
  // [link MTU, timestamps, the effective MSS, the largest super-segment's payload]
  const cases: Array<[number, boolean, number, number]> = [
    [1500, false, 1460, 44 * 1460], // 44 pieces: 40 + 44 * 1460 = 64,280 bytes; 45 would pass 64 KiB
    [1500, true, 1448, 45 * 1448], // 52 + 45 * 1448 = 65,212
    // 52 + 59 * 1110 = 65,542 > 65,535, while 40 + 59 * 1110 would fit: the timestamp option counts.
    [1162, true, 1110, 58 * 1110],
    [576, false, 536, 64 * 536], // 122 pieces would fit in 64 KiB; at most GSO_MAX_SEGS (64)
  ];
  for (const [mtu, ts, mss, largest] of cases) {
    it(`MTU ${mtu}${ts ? ' with timestamps' : ''}: whole ${mss}-byte pieces, ${largest / mss} of them, in one packet of at most 64 KiB`, async () => {
      const h = scriptHost({ mtu, offload: true, tcp: { timestamps: ts, sack: ts, congestionControl: wideOpen, initialSndBuf: 1 << 20 } });
      const lens = tapPayloads(h);
      await open(h, mtu - 40, ts)
        .do((h) => h.socket.write(Buffer.alloc(3 * largest + 100, 1)))
        .do((h) => {
          // The peer saw MSS-sized segments only: the link cut every super-segment.
          expect(new Set(h.unread.map((c) => c.seg!.payload.length))).toEqual(new Set([mss, 100]));
          h.consumed = h.out.length;
        });
      expect(lens).toEqual([largest, largest, largest, 100]);
      expect(largest + IPV4_HEADER_LEN + 20 + (ts ? 12 : 0)).toBeLessThanOrEqual(65535);
    });
  }

  it('a write of three and a half MSS goes as one super-segment of three pieces, then the half on its own; a small write as it is', async () => {
    const h = scriptHost({ offload: true, tcp: { timestamps: false, sack: false } });
    const lens = tapPayloads(h);
    await open(h, 1460, false)
      .do((h) => h.socket.write(Buffer.alloc(3 * 1460 + 730, 1)))
      .send('. 1:1461(1460) ack 1')
      .send('. 1461:2921(1460) ack 1')
      .send('. 2921:4381(1460) ack 1')
      .send('P. 4381:5111(730) ack 1')
      .recv('. 1:1(0) ack 5111 win 4000')
      .do((h) => h.socket.write(Buffer.alloc(100, 2)))
      .send('P. 5111:5211(100) ack 1');
    expect(lens).toEqual([3 * 1460, 730, 100]);
  });

  it('data sent again after a timeout goes one MSS per segment, even when the window would allow a super-segment', async () => {
    const h = scriptHost({ offload: true, tcp: { timestamps: false, sack: false } });
    const lens = tapPayloads(h);
    await open(h, 1460, false)
      .do((h) => h.socket.write(Buffer.alloc(4 * 1460, 1)))
      .send('. 1:1461(1460) ack 1')
      .send('. 1461:2921(1460) ack 1')
      .send('. 2921:4381(1460) ack 1')
      .send('P. 4381:5841(1460) ack 1')
      .after(200) // the RTO: 200 ms (Linux's minimum) after a 20 ms handshake RTT
      .send('. 1:1461(1460) ack 1')
      .recv('. 1:1(0) ack 1461 win 4000')
      // cwnd is two segments now: both go again, as two segments, not one super-segment.
      .send('. 1461:2921(1460) ack 1')
      .send('. 2921:4381(1460) ack 1');
    expect(lens).toEqual([4 * 1460, 1460, 1460, 1460]);
  });
});
