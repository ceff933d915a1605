/**
 * The send buffer (src/tcp/sendbuffer.ts): the user's chunks, never concatenated, from which
 * segments copy byte ranges — new data in order, retransmissions from anywhere. Checked against a
 * flat copy of the same bytes under random writes, acknowledgments and reads (seeded).
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/runtime/random.js';
import { SendBuffer } from '../../src/tcp/sendbuffer.js';

describe('send buffer', () => {
  it('any range reads back exactly the bytes written at that offset after any acknowledgments; empty writes add nothing (seeded)', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rand = seededRandom(seed);
      const int = (n: number) => Math.floor(rand() * n);
      const buf = new SendBuffer();
      let model: number[] = [];
      let next = 0;
      for (let step = 0; step < 300; step++) {
        const op = int(10);
        if (op < 3) {
          const chunk = Uint8Array.from({ length: int(4) === 0 ? 0 : 1 + int(3000) }, () => next++ & 0xff);
          buf.push(chunk);
          model.push(...chunk);
        } else if (op < 5) {
          const n = int(4) === 0 ? -int(10) : int(model.length + 100); // also negative and more than held
          buf.drop(n);
          model = model.slice(Math.max(0, Math.min(n, model.length)));
        } else if (op < 6 && int(8) === 0) {
          buf.clear();
          model = [];
        } else if (model.length > 0) {
          // A read at a random place (a retransmission), or several consecutive ones (new data).
          let off = int(model.length);
          for (let k = 0, reads = 1 + int(4); k < reads && off < model.length; k++) {
            const len = 1 + int(Math.min(1460, model.length - off));
            const dst = new Uint8Array(len + 8).fill(0xee);
            buf.copyOut(off, len, dst, 4);
            expect(Array.from(dst.subarray(4, 4 + len)), `seed ${seed} step ${step}`).toEqual(model.slice(off, off + len));
            expect([dst[3], dst[4 + len]], `seed ${seed}: bytes outside the target range untouched`).toEqual([0xee, 0xee]);
            off += len;
          }
        }
        expect(buf.length, `seed ${seed} step ${step}`).toBe(model.length);
      }
    }
  });

  it('reading outside what is held is a programming error (RangeError), not a short read', () => {
    const buf = new SendBuffer();
    buf.push(new Uint8Array([1, 2, 3]));
    buf.push(new Uint8Array([4, 5]));
    const dst = new Uint8Array(8);
    expect(() => buf.copyOut(4, 2, dst, 0)).toThrow(RangeError);
    expect(() => buf.copyOut(-1, 1, dst, 0)).toThrow(RangeError);
    buf.copyOut(3, 2, dst, 0);
    expect(Array.from(dst.subarray(0, 2))).toEqual([4, 5]);
    buf.drop(4);
    expect(() => buf.copyOut(0, 2, dst, 0)).toThrow(RangeError);
    buf.copyOut(0, 1, dst, 0);
    expect(dst[0]).toBe(5);
  });
});
