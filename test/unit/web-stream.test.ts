/** The live view's event stream: the SSE encoding, and streams that never grow without bound. */
import { describe, expect, it } from 'vitest';
import { CoalescingStream, LineStream, sseComment, sseFrame } from '../../src/web/sse.js';

/** A writer whose writes stay pending until released, like a client that stopped reading. */
function slowWriter() {
  const written: string[] = [];
  let release: (() => void) | undefined;
  let fail: ((e: Error) => void) | undefined;
  const write = (chunk: string) =>
    new Promise<void>((res, rej) => {
      written.push(chunk);
      release = res;
      fail = rej;
    });
  return { written, write, release: () => release?.(), fail: () => fail?.(new Error('gone')) };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('SSE encoding', () => {
  it('puts the event name, the id and the JSON on one data line, ending with a blank line', () => {
    expect(sseFrame('tick', { a: 1, s: 'x\ny' }, 7)).toBe('event: tick\nid: 7\ndata: {"a":1,"s":"x\\ny"}\n\n');
    expect(sseFrame('story', [1, 2])).toBe('event: story\ndata: [1,2]\n\n');
  });

  it('writes comments on one line', () => {
    expect(sseComment('still\r\nhere')).toBe(': still here\n\n');
  });
});

describe('CoalescingStream', () => {
  it('while a write is pending keeps only the newest frame of each kind, in first-seen order', async () => {
    const w = slowWriter();
    const s = new CoalescingStream(w.write);
    s.send('tick', 'T1');
    expect(w.written).toEqual(['T1']);
    s.send('tick', 'T2');
    s.send('conns', 'C1');
    s.send('tick', 'T3');
    s.send('conns', 'C2');
    expect(w.written).toEqual(['T1']);
    w.release();
    await tick();
    expect(w.written).toEqual(['T1', 'T3C2']);
    expect(s.coalesced).toBe(2);
    w.release();
    await tick();
    expect(w.written).toHaveLength(2);
  });

  it('closes when a write fails, and sends nothing after', async () => {
    const w = slowWriter();
    const s = new CoalescingStream(w.write);
    let closed = false;
    void s.closed.then(() => (closed = true));
    s.send('tick', 'T1');
    w.fail();
    await tick();
    expect(closed).toBe(true);
    s.send('tick', 'T2');
    expect(w.written).toEqual(['T1']);
  });
});

describe('LineStream', () => {
  it('queues at most maxLines, then counts the dropped ones and says so once the reader catches up', async () => {
    const w = slowWriter();
    const s = new LineStream(w.write, 3);
    s.line('a');
    for (const l of ['b', 'c', 'd', 'e', 'f']) s.line(l);
    expect(s.dropped).toBe(2);
    w.release();
    await tick();
    // The note stands where the lost lines would have been: after the ones kept.
    expect(w.written).toEqual(['a\n', 'b\nc\nd\n… 2 events dropped (the reader was too slow)\n']);
    expect(s.dropped).toBe(0);
    s.line('g');
    w.release();
    await tick();
    expect(w.written[2]).toBe('g\n');
  });
});
