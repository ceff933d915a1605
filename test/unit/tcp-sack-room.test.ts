/**
 * SACK blocks on our data segments (RFC 2018 §4: "include as many distinct SACK blocks as
 * possible"): they come out of the room the data leaves within the peer's MSS, so a segment
 * with options never exceeds the MSS; a full-sized segment carries none.
 */
import { describe, it } from 'vitest';
import { script, scriptHost } from '../helpers/script.js';

describe('SACK blocks on data segments', () => {
  it('as many as fit beside the data within the MSS: one block (12 bytes with its header) beside 1440 bytes, none beside 1450', async () => {
    const h = scriptHost();
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,sackOK,nop,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,wscale 7>')
      .recv('. 1:1(0) ack 1 win 512')
      .recv('P. 101:201(100) ack 1 win 512') // held out of order
      .send('. 1:1(0) ack 1 <sack 101:201>')
      .do((h) => h.socket.write(Buffer.alloc(1440, 1)))
      .send('P. 1:1441(1440) ack 1 <sack 101:201>')
      .recv('. 1:1(0) ack 1441 win 512') // (Nagle: a small segment waits for the ACK of the one in flight)
      .do((h) => h.socket.write(Buffer.alloc(1450, 1)))
      .send('P. 1441:2891(1450) ack 1');
  });
});
