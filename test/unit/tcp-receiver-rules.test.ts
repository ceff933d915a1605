/**
 * Receiver rules the packetdrill corpus does not pin, as timelines (test/helpers/script.ts): the
 * bound on the delayed-ACK time whatever the configuration, and what in-order data costs in memory.
 */
import { describe, expect, it } from 'vitest';
import { script, scriptHost } from '../helpers/script.js';
import type { ScriptHost } from '../helpers/script.js';

function open(h: ScriptHost) {
  return script(h)
    .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
    .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
    .recv('. 1:1(0) ack 1 win 512');
}

describe('the delayed ACK', () => {
  it('waits at most 200 ms (Linux TCP_DELACK_MAX) even when configured longer, because a peer RTO may be that short', async () => {
    const h = scriptHost({ tcp: { delayedAckMs: 500 } });
    h.listen();
    await open(h).recv('P. 1:101(100) ack 1 win 512').quiet(199).after(1).send('. 1:1(0) ack 101');
  });
});
