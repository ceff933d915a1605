/**
 * Autotuning and the stack-wide memory budget (src/tcp/memory.ts, like Linux's tcp_mem): the send
 * buffer grows to two congestion windows (Linux tcp_sndbuf_expand) and the receive buffer to twice
 * what the reader read in a round trip (tcp_rcv_space_adjust), but not while the stack is under
 * memory pressure. (How a grown receive buffer falls back under pressure, keeping the edge
 * already offered, is in tcp-receiver-rules.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { newReno } from '../../src/tcp/congestion.js';
import type { Script, ScriptHost } from '../helpers/script.js';
import { passiveOpen, script, scriptHost } from '../helpers/script.js';

const MSS = 1460;

/** Charge the budget just past its pressure threshold (not its limit), as other connections' buffers would. */
function pressure(h: ScriptHost): void {
  const m = h.stack.tcp.memory;
  m.charge(m.pressureAt + 1 - m.used);
  expect(m.underPressure).toBe(true);
}

/** Four segments out, all acknowledged: slow start takes cwnd from 10 to 14 segments. */
function fourAcked(s: Script): Script {
  return s
    .do((h) => h.socket.write(Buffer.alloc(4 * MSS, 1)))
    .send(`. 1:${1 + MSS}(${MSS}) ack 1`)
    .send(`. ${1 + MSS}:${1 + 2 * MSS}(${MSS}) ack 1`)
    .send(`. ${1 + 2 * MSS}:${1 + 3 * MSS}(${MSS}) ack 1`)
    .send(`P. ${1 + 3 * MSS}:${1 + 4 * MSS}(${MSS}) ack 1`)
    .recv(`. 1:1(0) ack ${1 + 4 * MSS} win 65535`);
}

describe('send-buffer autotuning (Linux tcp_sndbuf_expand)', () => {
  const tcp = { timestamps: false, sack: false, congestionControl: newReno, initialSndBuf: 4 * MSS, sndBuf: 100_000 };

  it('an ACK that grows cwnd grows the send buffer to two congestion windows', async () => {
    const h = scriptHost({ tcp });
    h.listen();
    await fourAcked(passiveOpen(h).do((h) => expect(h.conn!.snd.bufLimit).toBe(4 * MSS)));
    expect([h.conn!.snd.cc.cwnd, h.conn!.snd.bufLimit]).toEqual([14 * MSS, 28 * MSS]);
  });

  it('never past the configured send buffer', async () => {
    const h = scriptHost({ tcp: { ...tcp, sndBuf: 30_000 } });
    h.listen();
    await fourAcked(passiveOpen(h));
    expect(h.conn!.snd.bufLimit).toBe(30_000);
  });

  it('not while the stack is under memory pressure', async () => {
    const h = scriptHost({ tcp });
    h.listen();
    await fourAcked(passiveOpen(h).do(pressure));
    expect([h.conn!.snd.cc.cwnd, h.conn!.snd.bufLimit]).toEqual([14 * MSS, 4 * MSS]);
  });
});

describe('receive-buffer autotuning under memory pressure', () => {
  /** Passive open, window scale 7, SRTT 100 ms; the buffer starts at 64 KiB (`win 512`). */
  function open(h: ScriptHost) {
    h.listen();
    return script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
      .after(100)
      .recv('. 1:1(0) ack 1 win 512');
  }
  /** `pairs` times two full segments from `from`, read as they come, each pair ACKed with `win`. */
  function feed(s: Script, from: number, pairs: number, win: number): Script {
    for (let i = 0; i < pairs; i++) {
      const a = from + 2 * i * MSS;
      s.recv(`P. ${a}:${a + MSS}(${MSS}) ack 1 win 512`)
        .recv(`P. ${a + MSS}:${a + 2 * MSS}(${MSS}) ack 1 win 512`)
        .send(`. 1:1(0) ack ${a + 2 * MSS} win ${win}`);
    }
    return s;
  }

  it('a buffer still at its initial size is not counted as shrunk, and does not grow', async () => {
    const h = scriptHost({ tcp: { rcvBuf: 200_000 } });
    let s = open(h).do(pressure);
    s = feed(s, 1, 15, 512);
    await feed(s.after(100), 1 + 30 * MSS, 1, 512);
    expect(h.conn!.rcv.bufSize).toBe(64 << 10);
    expect(h.stack.stats()['tcp.mem.window-shrunk']).toBeUndefined();
  });
});
