/**
 * What a connection keeps in TIME-WAIT: everything it sent is acknowledged, so its SACK scoreboard
 * and RACK state go (up to limits.maxTimeWait connections wait there for 60 s on a server that
 * closes first); a retransmitted FIN is still acknowledged, and the 2·MSL timer still ends it.
 */
import { describe, expect, it } from 'vitest';
import { TcpState } from '../../src/tcp/state.js';
import { script, scriptHost } from '../helpers/script.js';

describe('a connection in TIME-WAIT', () => {
  it('drops its SACK scoreboard, and still answers a retransmitted FIN', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: true } });
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,sackOK>')
      .send('S. 0:0(0) ack 1 <*>')
      .recv('. 1:1(0) ack 1 win 65535')
      .do((h) => h.socket.end(Buffer.alloc(100, 1)))
      .send('FP. 1:101(100) ack 1')
      .do((h) => expect(h.conn!.snd.recovery).toBeDefined())
      .recv('. 1:1(0) ack 102 win 65535')
      .recv('F. 1:1(0) ack 102 win 65535')
      .send('. 102:102(0) ack 2')
      .state(TcpState.TIME_WAIT)
      .do((h) => expect(h.conn!.snd.recovery).toBeUndefined())
      .after(1000)
      .recv('F. 1:1(0) ack 102 win 65535')
      .send('. 102:102(0) ack 2')
      .state(TcpState.TIME_WAIT)
      .after(60_000)
      .state('CLOSED');
  });
});
