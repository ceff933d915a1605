/**
 * A binary min-heap of (deadline, item) as two parallel arrays: the one structure behind "one
 * timer for the earliest deadline" (the TCP layer's connection timers, the HTTP server's
 * connection deadlines). No I/O, no clock: the owner decides what a deadline means.
 *
 * Each item is in the heap at most once and knows where (`heapIndex`, -1 when not filed), so a
 * deadline that moves is moved in place and an item that goes away is taken out at once. (An
 * earlier version left stale entries behind and skipped them when they came up: a closed
 * connection then stayed reachable until its old deadline, up to TIME-WAIT's 60 s, and every
 * connection a busy server closed survived the young generation's collections for nothing.)
 */

/** What the heap keeps on each item: its position in the arrays, -1 when not filed. */
export interface HeapSlot {
  heapIndex: number;
}

export class DeadlineHeap<T extends HeapSlot> {
  private readonly at: number[] = [];
  private readonly items: T[] = [];

  get size(): number {
    return this.at.length;
  }

  /** The earliest deadline filed (Infinity when empty). */
  get nextAt(): number {
    return this.at.length > 0 ? this.at[0]! : Infinity;
  }

  /** The deadline `item` is filed under, Infinity when it is not filed. */
  deadlineOf(item: T): number {
    return item.heapIndex >= 0 ? this.at[item.heapIndex]! : Infinity;
  }

  /** File `item` under `at`, or move it there if it is filed already. */
  set(at: number, item: T): void {
    const i = item.heapIndex;
    if (i < 0) {
      this.at.push(at);
      this.items.push(item);
      this.up(this.at.length - 1, at, item);
      return;
    }
    const old = this.at[i]!;
    if (at < old) this.up(i, at, item);
    else if (at > old) this.down(i, at, item);
  }

  /** Take `item` out (nothing happens if it is not filed). */
  remove(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    item.heapIndex = -1;
    const lastAt = this.at.pop()!;
    const last = this.items.pop()!;
    if (i === this.at.length) return; // it was the last one
    // The last entry fills the hole, then finds its place in whichever direction it belongs.
    if (i > 0 && lastAt < this.at[(i - 1) >> 1]!) this.up(i, lastAt, last);
    else this.down(i, lastAt, last);
  }

  /** Remove and return the item with the earliest deadline (the heap must not be empty). */
  pop(): T {
    const top = this.items[0]!;
    this.remove(top);
    return top;
  }

  /** Place (at, item) at `i` or above it: move parents with later deadlines down. */
  private up(i: number, at: number, item: T): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.at[p]! <= at) break;
      this.move(p, i);
      i = p;
    }
    this.place(i, at, item);
  }

  /** Place (at, item) at `i` or below it: move the earlier child up while there is one. */
  private down(i: number, at: number, item: T): void {
    const A = this.at;
    const n = A.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && A[r]! < A[l]! ? r : l;
      if (at <= A[m]!) break;
      this.move(m, i);
      i = m;
    }
    this.place(i, at, item);
  }

  /** The entry at `from` moves to `to`. */
  private move(from: number, to: number): void {
    const item = this.items[from]!;
    this.at[to] = this.at[from]!;
    this.items[to] = item;
    item.heapIndex = to;
  }

  private place(i: number, at: number, item: T): void {
    this.at[i] = at;
    this.items[i] = item;
    item.heapIndex = i;
  }
}
