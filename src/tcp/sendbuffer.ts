/**
 * The send buffer: bytes the user wrote that are not yet acknowledged, as a list of the
 * user's own chunks (never concatenated). Offset 0 is the byte at SND.UNA (after the SYN).
 * Segments are built by copying a range straight into the outgoing packet.
 */
export class SendBuffer {
  private chunks: Uint8Array[] = [];
  /** Bytes of chunks[0] already acknowledged and dropped. */
  private headOffset = 0;
  private total = 0;
  // A cursor remembers where the last copy ended, so building consecutive segments is O(1) per chunk.
  private cursorIndex = 0;
  private cursorStart = 0; // buffer offset at which chunks[cursorIndex] starts (relative to headOffset)

  get length(): number {
    return this.total;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Drop `n` acknowledged bytes from the front. */
  drop(n: number): void {
    if (n <= 0) return;
    if (n > this.total) n = this.total;
    this.total -= n;
    let i = 0;
    let left = n;
    while (left > 0) {
      const c = this.chunks[i]!;
      const avail = c.length - this.headOffset;
      if (left >= avail) {
        left -= avail;
        this.headOffset = 0;
        i++;
      } else {
        this.headOffset += left;
        left = 0;
      }
    }
    // All acknowledged: empty the array outright (an idle connection holds no array storage).
    // Otherwise not splice(0, i) for one chunk: it returns an array of the removed chunks, garbage on every ACK.
    if (i === this.chunks.length) this.chunks.length = 0;
    else if (i === 1) this.chunks.shift();
    else if (i > 1) this.chunks.splice(0, i);
    this.cursorIndex = 0;
    this.cursorStart = 0;
  }

  /** Copy `len` bytes starting at buffer offset `offset` into `dst` at `dstOffset`. */
  copyOut(offset: number, len: number, dst: Uint8Array, dstOffset: number): void {
    if (offset < 0 || offset + len > this.total) throw new RangeError('SendBuffer.copyOut out of range');
    // Start from the cursor if it is not past the wanted offset, else from the head.
    let i = 0;
    let start = 0;
    if (this.cursorStart <= offset && this.cursorIndex < this.chunks.length) {
      i = this.cursorIndex;
      start = this.cursorStart;
    }
    for (;;) {
      const c = this.chunks[i]!;
      const from = i === 0 ? this.headOffset : 0;
      const clen = c.length - from;
      if (offset < start + clen) break;
      start += clen;
      i++;
    }
    let written = 0;
    while (written < len) {
      const c = this.chunks[i]!;
      const from = (i === 0 ? this.headOffset : 0) + (offset + written - start);
      const n = Math.min(len - written, c.length - from);
      dst.set(n === c.length && from === 0 ? c : c.subarray(from, from + n), dstOffset + written);
      written += n;
      if (from + n >= c.length) {
        start += c.length - (i === 0 ? this.headOffset : 0);
        i++;
      }
    }
    this.cursorIndex = i;
    this.cursorStart = start;
  }

  clear(): void {
    this.chunks = [];
    this.headOffset = 0;
    this.total = 0;
    this.cursorIndex = 0;
    this.cursorStart = 0;
  }
}
