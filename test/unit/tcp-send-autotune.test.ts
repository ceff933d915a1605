/**
 * Send-buffer autotuning and the stack-wide memory budget (src/tcp/memory.ts, like Linux's
 * tcp_mem): the send buffer grows to two congestion windows (Linux tcp_sndbuf_expand), but not
 * while the stack is under memory pressure. (The receive side is in tcp-receive-autotune.test.ts
 * and tcp-receiver-rules.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { newReno } from '../../src/tcp/congestion.js';
import type { Script } from '../helpers/script.js';
import { memoryPressure as pressure, passiveOpen, scriptHost } from '../helpers/script.js';

const MSS = 1460;

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
