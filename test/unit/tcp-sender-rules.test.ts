/**
 * Sender rules as timelines (test/helpers/script.ts) where the wire alone does not show them or
 * the packetdrill runner cannot express them: RTT samples from timestamp echoes of retransmitted
 * segments, path-MTU messages during the handshake or about a larger MTU, and the counters that
 * unacceptable ACKs leave behind.
 */
import { describe, expect, it } from 'vitest';
import { openLinuxLike, script, scriptHost } from '../helpers/script.js';

const UNREACHABLE = 3;
const FRAG_NEEDED = 4;

describe('RTT samples (RFC 6298, RFC 7323 §4.1)', () => {
  it('[ts.rtt-retransmitted] with timestamps the ACK of a retransmitted segment is an RTT sample from its echo (no Karn ambiguity), which also ends the backoff', async () => {
    const h = scriptHost({});
    await openLinuxLike(h)
      .do((h) => h.socket.write(Buffer.alloc(100, 3)))
      .send('P. 1:101(100) ack 1 <TS val 20 ecr 1020>')
      .after(200)
      .send('P. 1:101(100) ack 1 <TS val 220 ecr 1020>') // the RTO; backed off to 400 ms
      .after(50)
      // The echo names the retransmission: RTT 50 ms, SRTT 20 -> 23.75, and the backoff is over.
      .recv('. 1:1(0) ack 101 win 512 <TS val 1300 ecr 220>')
      .do((h) => expect([h.conn!.snd.rto.srtt, h.conn!.snd.rto.rto]).toEqual([23.75, 200]));
  });
});

describe('path MTU messages (RFC 1191 §6.4, RFC 5927)', () => {
  it('[pmtu.handshake] "fragmentation needed" about our SYN lowers the MSS the connection then uses; the SYN is left to its own timer', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    await script(h)
      .do((h) => h.connect())
      .send('S 0:0(0) win 65535 <mss 1460,wscale 7>')
      .icmp(UNREACHABLE, FRAG_NEEDED, { seq: 0, mtu: 1000 })
      .quiet(0)
      .after(10)
      .recv('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .send('. 1:1(0) ack 1')
      .do((h) => h.socket.write(Buffer.alloc(2000, 1)))
      .send('. 1:961(960) ack 1') // MTU 1000 - 40
      .send('. 961:1921(960) ack 1')
      .send('P. 1921:2001(80) ack 1')
      .quiet(0);
    expect(h.stack.stats()['tcp.pmtu.lowered']).toBe(1);
  });

  it('[pmtu.ignored-larger] "fragmentation needed" naming an MTU no smaller than the path\'s changes nothing, resends nothing, and is counted', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 <*>')
      .recv('. 1:1(0) ack 1 win 65535')
      .do((h) => h.socket.write(Buffer.alloc(1460, 1)))
      .send('P. 1:1461(1460) ack 1')
      .icmp(UNREACHABLE, FRAG_NEEDED, { seq: 1, mtu: 1500, len: 1500 })
      .quiet(10)
      .recv('. 1:1(0) ack 1461 win 65535')
      .quiet(1000);
    expect([h.conn!.snd.mss, h.stack.stats()['tcp.pmtu.ignored'], h.stack.stats()['tcp.pmtu.lowered']]).toEqual([1460, 1, undefined]);
  });
});

describe('path MTU messages below our MTU but above the peer\'s MSS (RFC 1191 §6.4)', () => {
  it('lower the path MSS, not the segment size: the peer\'s MSS (1000) is still the smaller', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1000>')
      .send('S. 0:0(0) ack 1 <*>')
      .recv('. 1:1(0) ack 1 win 65535')
      .do((h) => h.socket.write(Buffer.alloc(1000, 1)))
      .send('P. 1:1001(1000) ack 1')
      .icmp(UNREACHABLE, FRAG_NEEDED, { seq: 1, mtu: 1400, len: 1040 }) // path MSS 1360: lowered, still above 1000
      .quiet(10)
      .recv('. 1:1(0) ack 1001 win 65535')
      .do((h) => h.socket.write(Buffer.alloc(2000, 1)))
      .send('. 1001:2001(1000) ack 1')
      .send('P. 2001:3001(1000) ack 1');
    expect([h.conn!.snd.mss, h.conn!.snd.pathMss, h.stack.stats()['tcp.pmtu.lowered']]).toEqual([1000, 1360, 1]);
  });
});

describe('unacceptable ACKs are counted (RFC 5961 §5.2)', () => {
  it('an ACK of data never sent and one older than MAX.SND.WND below SND.UNA are each answered with an ACK, dropped and counted', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 1000 <mss 1460>')
      .send('S. 0:0(0) ack 1 <*>')
      .recv('. 1:1(0) ack 1 win 1000')
      .do((h) => h.socket.write(Buffer.alloc(3000, 1)))
      .send('. 1:1001(1000) ack 1')
      .recv('. 1:1(0) ack 1001 win 1000')
      .send('. 1001:2001(1000) ack 1')
      .recv('. 1:1(0) ack 2001 win 1000')
      .send('P. 2001:3001(1000) ack 1')
      .recv('. 1:1(0) ack 5001 win 1000') // beyond SND.MAX
      .send('. 3001:3001(0) ack 1')
      // One reply to an unacceptable segment per 500 ms per connection (Linux tcp_invalid_ratelimit);
      // meanwhile the retransmission timer (200 ms) resends the unacknowledged segment.
      .after(200)
      .send('P. 2001:3001(1000) ack 1')
      .after(300)
      .recv('. 1:1(0) ack 1000 win 1000') // SND.UNA (2001) - MAX.SND.WND (1000) = 1001 > 1000
      .send('. 3001:3001(0) ack 1')
      .recv('. 1:1(0) ack 1001 win 1000') // exactly at the edge: acceptable, a duplicate, nothing sent
      .quiet(0);
    const s = h.stack.stats();
    expect([s['tcp.drop.ack-unsent'], s['tcp.drop.ack-too-old']]).toEqual([1, 1]);
  });
});
