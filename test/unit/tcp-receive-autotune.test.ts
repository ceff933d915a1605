/**
 * Receive-buffer autotuning, as Linux's tcp_rcv_space_adjust does it: once per round trip, when the
 * application read more than in the round trip before, the receive buffer (and with it the window
 * we advertise) grows to twice what it read, up to the configured maximum. The window is what the
 * peer sees, so these are wire timelines: our ACKs' window fields (window scale 7: one unit is
 * 128 bytes; the buffer starts at 64 KiB, `win 512`).
 */
import { describe, expect, it } from 'vitest';
import { memoryPressure as pressure, script, scriptHost } from '../helpers/script.js';
import type { Script, ScriptHost } from '../helpers/script.js';

const MSS = 1460;

/** Passive open; the peer's ACK comes 100 ms after our SYN-ACK, so SRTT is 100 ms. */
function open(h: ScriptHost) {
  h.listen();
  return script(h)
    .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
    .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
    .after(100)
    .recv('. 1:1(0) ack 1 win 512');
}

/** `pairs` times two full segments from relative sequence `from`, each pair ACKed at once with window `win`; the application reads them as they come. */
function feed(s: Script, from: number, pairs: number, win: number): Script {
  for (let i = 0; i < pairs; i++) {
    const a = from + 2 * i * MSS;
    s.recv(`P. ${a}:${a + MSS}(${MSS}) ack 1 win 512`)
      .recv(`P. ${a + MSS}:${a + 2 * MSS}(${MSS}) ack 1 win 512`)
      .send(`. 1:1(0) ack ${a + 2 * MSS} win ${win}`);
  }
  return s;
}

describe('receive-buffer autotuning (Linux tcp_rcv_space_adjust)', () => {
  it('grows the window to twice what the reader read in the last round trip, once that round trip has passed', async () => {
    const h = scriptHost();
    let s = open(h);
    // +100 ms: 30 segments (43,800 bytes) read; the round trip that measures them starts with the first.
    s = feed(s, 1, 15, 512);
    // +150 ms: half a round trip later: not yet.
    s = feed(s.after(50), 1 + 30 * MSS, 1, 512);
    // +200 ms: a round trip has passed; 46,720 bytes were read in it: the buffer grows to 93,440 (730 units).
    s = feed(s.after(50), 1 + 32 * MSS, 1, 730);
    // +300 ms: the reader read less in this round trip than in the last: no growth.
    await feed(s.after(100), 1 + 34 * MSS, 1, 730);
  });

  it('never past the configured receive buffer', async () => {
    const h = scriptHost({ tcp: { rcvBuf: 80_000 } });
    let s = open(h);
    s = feed(s, 1, 15, 512);
    s = feed(s.after(100), 1 + 30 * MSS, 16, 625); // 80,000 bytes, not 93,440
    // The next round trip the reader reads still more, but the buffer is at its maximum already.
    await feed(s.after(100), 1 + 62 * MSS, 1, 625);
    expect(h.stack.stats()['tcp.rcvbuf.grown']).toBe(1);
  });

  it('not while the stack is under memory pressure, and a buffer still at its initial size is not counted as shrunk', async () => {
    const h = scriptHost({ tcp: { rcvBuf: 200_000 } });
    let s = open(h).do(pressure);
    s = feed(s, 1, 15, 512);
    await feed(s.after(100), 1 + 30 * MSS, 1, 512); // 512: no growth
    expect(h.conn!.rcv.bufSize).toBe(64 << 10);
    expect(h.stack.stats()['tcp.mem.window-shrunk']).toBeUndefined();
  });
});
