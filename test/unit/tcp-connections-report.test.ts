/**
 * The TCB variables the stack reports for each connection (TcpLayer.connections(), served as
 * /connections by `netstack up` and read by the live view): RFC 9293 §3.3.1's SND.UNA, SND.NXT,
 * RCV.NXT, the windows, and the RTT estimator's and congestion controller's state.
 */
import { describe, expect, it } from 'vitest';
import { PEER_ADDR, STACK_ADDR, script, scriptHost } from '../helpers/script.js';

describe('the connection report', () => {
  it('names both ends and gives the sequence variables, windows, RTT and congestion state as they stand', async () => {
    const h = scriptHost();
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
      .after(100) // the round trip: SRTT 100 ms
      .recv('. 1:1(0) ack 1 win 300')
      .recv('P. 1:101(100) ack 1 win 300')
      .do((h) => h.socket.write(Buffer.alloc(10, 1)))
      .send('P. 1:11(10) ack 101');
    const [info, ...others] = h.stack.tcp.connections();
    expect(others).toEqual([]);
    expect(info).toEqual({
      local: `${STACK_ADDR}:8080`,
      remote: `${PEER_ADDR}:40000`,
      state: 'ESTABLISHED',
      sndUna: (h.ourIsn + 1) >>> 0,
      sndNxt: (h.ourIsn + 11) >>> 0, // 10 bytes in flight
      rcvNxt: (h.peerIsn + 101) >>> 0,
      sndWnd: 300 << 7, // the peer's window, scaled
      rcvWnd: 512 << 7, // what our last segment offered (the application had read the 100 bytes)
      srtt: 100,
      rto: 300, // SRTT + max(G, 4 RTTVAR) = 100 + 4·50 (RFC 6298 §2.2), at least the 200-ms minimum
      retransmits: 0,
      cwnd: 10 * 1460, // the initial window (RFC 6928)
      ssthresh: h.conn!.snd.cc.ssthresh,
    });
  });
});
