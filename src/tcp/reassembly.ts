/**
 * The out-of-order receive queue: segments that arrived after a hole wait here
 * until the hole is filled (RFC 9293 §3.10.7.4, "segments with higher beginning
 * sequence numbers ... should be held for later processing"), and the queue's
 * contiguous ranges are what we report as SACK blocks (RFC 2018).
 *
 * Layout: a sorted array of disjoint, non-adjacent *ranges*; each range is a run
 * of contiguous bytes held as a list of chunks (copies of segment payloads).
 *
 *     rcvNxt          range 0               range 1
 *       |   hole   [chunk|chunk|chunk)  hole  [chunk)  ...
 *
 * Because a newly arrived segment is first trimmed to the parts no range covers,
 * every stored piece lands in a gap: it extends the range on its left, the range on
 * its right, joins the two, or starts a new range. Nothing is ever split.
 *
 * Bounds (a peer must not be able to make us hold unbounded memory):
 *  - `maxBytes` of data in total: what does not fit is refused (the peer will
 *    retransmit it; we never promised to keep out-of-order data).
 *  - `maxRanges` disjoint ranges (holes): a piece that would open one more is refused.
 *  - chunk count: tiny neighbouring chunks are coalesced into one (a copy of at most
 *    COALESCE_LIMIT bytes), so two adjacent chunks always hold more than
 *    COALESCE_LIMIT bytes together. A range of B bytes therefore has at most
 *    2B/COALESCE_LIMIT + 1 chunks, however small the peer's segments are.
 *
 * All sequence arithmetic is modulo 2^32. Internally positions are measured as
 * signed offsets from rcvNxt (seqSub), which turns the circle into a plain line
 * for everything within the window.
 */
import { seqAdd, seqSub, type Seq } from './seq.js';

/** Neighbouring chunks whose sizes add up to at most this many bytes are merged into one. */
const COALESCE_LIMIT = 2048;

interface Range {
  start: Seq;
  length: number;
  chunks: Uint8Array[];
  /** Insert counter value of the last change: orders SACK blocks by recency. */
  stamp: number;
}

export class OutOfOrderQueue {
  readonly maxBytes: number;
  readonly maxRanges: number;
  #ranges: Range[] = [];
  #bytes = 0;
  #chunks = 0;
  #clock = 0;

  constructor(maxBytes: number, maxRanges = 256) {
    if (!(maxBytes >= 0) || !(maxRanges >= 1)) throw new RangeError('OutOfOrderQueue: bad bounds');
    this.maxBytes = maxBytes;
    this.maxRanges = maxRanges;
  }

  /** Data bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Number of disjoint ranges held (the SACK blocks we could report). */
  get count(): number {
    return this.#ranges.length;
  }

  /** Number of chunks (stored buffers) held; bounded as described above. */
  get chunks(): number {
    return this.#chunks;
  }

  /**
   * Store the part of `payload` (starting at sequence `seq`) that falls inside
   * [rcvNxt, rcvNxt + window) and is not already stored. Bytes already held win
   * over the new copy. The payload is copied: the packet buffer is reused.
   * Returns the number of bytes actually stored (0 if nothing new or no room).
   */
  insert(seq: Seq, payload: Uint8Array, rcvNxt: Seq, window: number): number {
    // Clip to the receive window, in offsets from rcvNxt.
    const off = seqSub(seq, rcvNxt);
    const lo = Math.max(off, 0);
    const hi = Math.min(off + payload.length, window);
    if (hi <= lo) return 0;

    // Find the gaps of [lo, hi) that no stored range covers.
    const gaps: Array<[number, number]> = [];
    let cursor = lo;
    // Start at the last range beginning at or before lo (it may cover lo); earlier ones end before it.
    const first = Math.max(0, this.#indexAfter(lo, rcvNxt) - 1);
    for (let k = first; k < this.#ranges.length; k++) {
      const r = this.#ranges[k]!;
      const rs = seqSub(r.start, rcvNxt);
      const re = rs + r.length;
      if (re <= cursor) continue;
      if (rs >= hi) break;
      if (rs > cursor) gaps.push([cursor, rs]);
      cursor = re;
      if (cursor >= hi) break;
    }
    if (cursor < hi) gaps.push([cursor, hi]);

    // Fill them in sequence order, so the bytes nearest rcvNxt win when space runs out.
    let stored = 0;
    for (const [a, b] of gaps) {
      const room = this.maxBytes - this.#bytes;
      if (room <= 0) break;
      const end = Math.min(b, a + room);
      stored += this.#storePiece(a, payload.subarray(a - off, end - off), rcvNxt);
    }
    return stored;
  }

  /**
   * Remove and return, in order, the data now contiguous from `rcvNxt`; bytes
   * below rcvNxt (already received some other way) are dropped. The caller
   * advances rcvNxt by the total length returned.
   */
  take(rcvNxt: Seq): Uint8Array[] {
    const out: Uint8Array[] = [];
    while (this.#ranges.length > 0) {
      const r = this.#ranges[0]!;
      const rs = seqSub(r.start, rcvNxt);
      if (rs > 0) break; // a hole before the first range: nothing more to hand over
      this.#ranges.shift();
      this.#bytes -= r.length;
      this.#chunks -= r.chunks.length;
      let skip = -rs; // bytes of this range that lie below rcvNxt
      for (const c of r.chunks) {
        if (skip >= c.length) {
          skip -= c.length;
          continue;
        }
        out.push(skip > 0 ? c.subarray(skip) : c);
        skip = 0;
      }
      if (r.length > -rs) rcvNxt = seqAdd(r.start, r.length);
    }
    return out;
  }

  /**
   * Up to `n` SACK blocks [left edge, right edge), the most recently changed range
   * first, as RFC 2018 §4 asks (the first block must contain the latest segment).
   */
  sackBlocks(n: number): Array<[number, number]> {
    return [...this.#ranges]
      .sort((x, y) => y.stamp - x.stamp)
      .slice(0, Math.max(0, n))
      .map((r): [number, number] => [r.start, seqAdd(r.start, r.length)]);
  }

  /** Whether [seq, seq + len) is entirely held already (a duplicate, RFC 2883 §4.2). */
  holds(seq: Seq, len: number, rcvNxt: Seq): boolean {
    if (len <= 0) return false;
    const off = seqSub(seq, rcvNxt);
    const i = this.#indexAfter(off, rcvNxt) - 1;
    if (i < 0) return false;
    const r = this.#ranges[i]!;
    const rs = seqSub(r.start, rcvNxt);
    return rs <= off && off + len <= rs + r.length;
  }

  clear(): void {
    this.#ranges = [];
    this.#bytes = 0;
    this.#chunks = 0;
  }

  /** Index of the first range that starts after offset `pos` from rcvNxt (binary search). */
  #indexAfter(pos: number, rcvNxt: Seq): number {
    const ranges = this.#ranges;
    let lo = 0;
    let hi = ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqSub(ranges[mid]!.start, rcvNxt) <= pos) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Store `data` (a view into the packet) at offset `pos` from rcvNxt, which lies in
   * a gap between stored ranges. Returns the bytes stored (0 if it would exceed maxRanges).
   */
  #storePiece(pos: number, data: Uint8Array, rcvNxt: Seq): number {
    const ranges = this.#ranges;
    const len = data.length;
    const start = seqAdd(rcvNxt, pos);
    const i = this.#indexAfter(pos, rcvNxt);
    const left = i > 0 && seqAdd(ranges[i - 1]!.start, ranges[i - 1]!.length) === start ? ranges[i - 1]! : undefined;
    const right = i < ranges.length && ranges[i]!.start === seqAdd(start, len) ? ranges[i]! : undefined;
    if (!left && !right && ranges.length >= this.maxRanges) return 0;

    const stamp = ++this.#clock;
    if (left) {
      this.#append(left, data);
      left.stamp = stamp;
      if (right) {
        // The piece closed the hole between two ranges: join them.
        this.#join(left, right);
        ranges.splice(i, 1);
      }
    } else if (right) {
      this.#prepend(right, data);
      right.start = start;
      right.stamp = stamp;
    } else {
      ranges.splice(i, 0, { start, length: len, chunks: [copy(data)], stamp });
      this.#chunks++;
    }
    this.#bytes += len;
    return len;
  }

  #append(r: Range, data: Uint8Array): void {
    const last = r.chunks[r.chunks.length - 1]!;
    if (last.length + data.length <= COALESCE_LIMIT) {
      r.chunks[r.chunks.length - 1] = concat(last, data);
    } else {
      r.chunks.push(copy(data));
      this.#chunks++;
    }
    r.length += data.length;
  }

  #prepend(r: Range, data: Uint8Array): void {
    const first = r.chunks[0]!;
    if (data.length + first.length <= COALESCE_LIMIT) {
      r.chunks[0] = concat(data, first);
    } else {
      r.chunks.unshift(copy(data));
      this.#chunks++;
    }
    r.length += data.length;
  }

  /** Move `right`'s chunks onto the end of `left` (they are contiguous). */
  #join(left: Range, right: Range): void {
    const last = left.chunks[left.chunks.length - 1]!;
    const first = right.chunks[0]!;
    if (last.length + first.length <= COALESCE_LIMIT) {
      left.chunks[left.chunks.length - 1] = concat(last, first);
      this.#chunks--;
      for (let k = 1; k < right.chunks.length; k++) left.chunks.push(right.chunks[k]!);
    } else {
      for (const c of right.chunks) left.chunks.push(c);
    }
    left.length += right.length;
  }
}

/** A private copy (`Buffer#slice` would share memory, so copy explicitly). */
function copy(src: Uint8Array): Uint8Array {
  const c = new Uint8Array(src.length);
  c.set(src);
  return c;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const c = new Uint8Array(a.length + b.length);
  c.set(a);
  c.set(b, a.length);
  return c;
}
