/**
 * RFC 6298 §5.3: an ACK of new data restarts the retransmission timer at now + RTO, with the RTO
 * as it stands after that ACK. When the ACK also ends a backoff (a timestamp echo is an RTT sample
 * even for a retransmitted segment, RFC 7323 §4.1), the restarted timer expires EARLIER than the
 * backed-off one it replaces, and must fire then.
 */
import { describe, expect, it } from 'vitest';
import { script, scriptHost } from '../helpers/script.js';

describe('the retransmission timer restarted by an ACK', () => {
  it('[rto.restart-earlier] fires at the new deadline when that is earlier than the backed-off one', async () => {
    const h = scriptHost({ tcp: { sack: false } });
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,TS val 1000 ecr 0,nop,wscale 7>')
      .send('S. 0:0(0) ack 1 <*>')
      .after(20)
      .recv('. 1:1(0) ack 1 win 512 <TS val 1020 ecr 0>') // SRTT 20 ms: RTO 200 ms (the minimum)
      .do((h) => h.socket.write(Buffer.alloc(3 * 1448, 1)))
      .send('. 1:1449(1448) ack 1 <*>')
      .send('. 1449:2897(1448) ack 1 <*>')
      .send('P. 2897:4345(1448) ack 1 <*>')
      .after(200)
      .send('. 1:1449(1448) ack 1 <*>') // the timeout: RTO backed off to 400 ms
      .do((h) => expect(h.conn!.snd.rto.rto).toBe(400))
      .after(20)
      // The echo names the retransmission (sent 200 ms after our first TSval, 20 ms ago): a
      // sample of 20 ms, the backoff is over, and the timer restarts at now + 200 ms, not at
      // the 400 ms the backed-off timer had left.
      .recv('. 1:1(0) ack 1449 win 512 <TS val 1240 ecr 220>')
      .do((h) => expect(h.conn!.snd.rto.rto).toBe(200))
      .send('. 1449:2897(1448) ack 1 <*>')
      .send('P. 2897:4345(1448) ack 1 <*>')
      .quiet(199)
      .after(1)
      .send('. 1449:2897(1448) ack 1 <*>');
  });
});
