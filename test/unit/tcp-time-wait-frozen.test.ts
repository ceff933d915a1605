/**
 * TIME-WAIT with the connection's sender, receiver and timers let go (Connection.freeze,
 * src/tcp/time-wait.ts): once the ACK of the peer's FIN is out, a connection in TIME-WAIT keeps
 * a small record, and whatever arrives later is handled exactly as by a connection that kept
 * everything — checked here segment for segment against one that never freezes, over random
 * hostile and ordinary segments (old, new, out of window, RST, SYN, data, FIN, timestamps and
 * SACK blocks, window scaling on and off), for many seeds.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/runtime/random.js';
import { TcpState } from '../../src/tcp/state.js';
import { script, scriptHost, type ScriptHost } from '../helpers/script.js';

/** Handshake, 100 bytes from us with our FIN, the peer's ACK and FIN: we are in TIME-WAIT. */
async function intoTimeWait(h: ScriptHost, ts: boolean, sack: boolean, wscale = false): Promise<void> {
  const synOpts = ['mss 1460', ...(sack ? ['sackOK'] : []), ...(ts ? ['TS val 1000 ecr 0'] : []), ...(wscale ? ['wscale 7'] : [])].join(',');
  const tsOpt = (val: number, ecr: number) => (ts ? ` <nop,nop,TS val ${val} ecr ${ecr}>` : '');
  h.listen();
  await script(h)
    .recv(`S 0:0(0) win 65535 <${synOpts}>`)
    .send('S. 0:0(0) ack 1 <*>')
    .recv(`. 1:1(0) ack 1 win 65535${tsOpt(1001, 0)}`)
    .do((h) => h.socket.end(Buffer.alloc(100, 1)))
    .send('FP. 1:101(100) ack 1 <*>')
    .recv(`. 1:1(0) ack 102 win 65535${tsOpt(1002, 1)}`)
    .recv(`F. 1:1(0) ack 102 win 65535${tsOpt(1003, 1)}`)
    .send('. 102:102(0) ack 2 <*>')
    .state(TcpState.TIME_WAIT);
}

const pick = <T,>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

/** One random segment from the peer, in script syntax (relative numbers: its next is 2, ours 102). */
function randomSegment(rand: () => number, ts: boolean, sack: boolean, tsVal: { v: number }): string {
  const flags = pick(rand, ['.', '.', 'F.', 'F.', 'R', 'R.', 'S', 'P.', 'FP.'] as const);
  const start = pick(rand, [0, 1, 2, 2, 2, 3, 7, 1002, 70002]); // below, at, above the peer's next (2)
  const len = flags.includes('P') ? pick(rand, [1, 10]) : 0;
  // Relative numbers wrap (the script adds them to the ISNs modulo 2^32).
  const ack = flags === 'R' || flags === 'S' ? '' : ` ack ${(102 + pick(rand, [-1000, -1, 0, 0, 0, 1, 100])) >>> 0}`;
  const opts: string[] = [];
  if (ts && rand() < 0.9) {
    tsVal.v += pick(rand, [-1000, -2, 0, 1, 1, 5, 100]);
    opts.push(`TS val ${tsVal.v >>> 0} ecr ${pick(rand, [0, 1, 3])}`);
  }
  if (sack && ack !== '' && rand() < 0.2) opts.push(`sack ${pick(rand, ['1:50', '90:101', '102:200', '50:60 70:80'])}`);
  return `${flags} ${start}:${start + len}(${len})${ack} win ${pick(rand, [0, 100, 65535])}${opts.length ? ` <${opts.join(',')}>` : ''}`;
}

/** Everything observable: what the stack sent, its state transitions, its counters. */
async function run(seed: number, frozen: boolean): Promise<{ out: string[]; states: string; stats: Record<string, number>; froze: number }> {
  const rand = seededRandom(seed);
  const ts = rand() < 0.5;
  const sack = rand() < 0.5;
  const wscale = rand() < 0.5;
  const h = scriptHost({ seed, tcp: { timestamps: ts, sack } });
  await intoTimeWait(h, ts, sack, wscale);
  const conn = h.conn!;
  if (!frozen) {
    // The reference: a connection that keeps everything (thawed now, never frozen again).
    void conn.snd;
    conn.freeze = () => {};
  }
  let froze = 0;
  const tsVal = { v: 1003 };
  for (let i = 0; i < 12; i++) {
    if (conn.isFrozen) froze++;
    h.inject(randomSegment(rand, ts, sack, tsVal));
    await h.settle();
    await h.clock.sleep(pick(rand, [0, 1, 200, 5000, 20000]));
  }
  await h.clock.sleep(70_000); // TIME-WAIT ends (or ended), whatever restarted it
  const stats = h.stack.stats();
  return { out: h.out.map((c) => `${c.at} ${c.raw}`), states: h.transcript.join('\n'), stats, froze };
}

describe('a connection in TIME-WAIT that let go of its sender, receiver and timers', () => {
  it('[limits.time-wait-record] answers every segment exactly as one that kept them (random segments, 60 seeds)', async () => {
    let froze = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const a = await run(seed, true);
      const b = await run(seed, false);
      expect(a.out, `seed ${seed}: segments sent`).toEqual(b.out);
      expect(a.states, `seed ${seed}: transcript`).toEqual(b.states);
      expect(a.stats, `seed ${seed}: counters`).toEqual(b.stats);
      froze += a.froze;
    }
    // The comparison means something only if the connections were frozen when segments came.
    expect(froze).toBeGreaterThan(200);
  });

  it('is frozen once its last ACK is out, lists its numbers without being rebuilt, and ends after 2·MSL', async () => {
    const h = scriptHost({ tcp: { timestamps: true, sack: true } });
    await intoTimeWait(h, true, true);
    const conn = h.conn!;
    expect(conn.isFrozen).toBe(true);
    const [info] = h.stack.connections().filter((c) => c.state === 'TIME-WAIT');
    expect(conn.isFrozen).toBe(true);
    expect(info).toMatchObject({ state: 'TIME-WAIT', sndUna: info!.sndNxt, retransmits: 0 });
    expect(info!.cwnd).toBeGreaterThan(0);
    // A retransmitted FIN: rebuilt, answered, frozen again after the flush.
    await script(h)
      .after(1000)
      .recv('F. 1:1(0) ack 102 win 65535 <nop,nop,TS val 1100 ecr 1>')
      .send('. 102:102(0) ack 2 <*>')
      .state(TcpState.TIME_WAIT);
    expect(conn.isFrozen).toBe(true);
    await script(h).after(60_000).state('CLOSED');
  });
});
