/**
 * A binary min-heap of (deadline, item) as two parallel arrays: the one structure behind "one
 * timer for the earliest deadline" (the TCP layer's connection timers, the HTTP server's
 * connection deadlines). No I/O, no clock: the owner decides what a deadline means and skips
 * stale entries itself (an item filed again under an earlier deadline leaves its old entry).
 */
export class DeadlineHeap<T> {
  private at: number[] = [];
  private items: T[] = [];

  get size(): number {
    return this.at.length;
  }

  /** The earliest deadline filed (Infinity when empty). */
  get nextAt(): number {
    return this.at.length > 0 ? this.at[0]! : Infinity;
  }

  /** The item filed under `nextAt`. */
  peek(): T | undefined {
    return this.items[0];
  }

  push(at: number, item: T): void {
    const A = this.at;
    const C = this.items;
    let i = A.length;
    A.push(at);
    C.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (A[p]! <= at) break;
      A[i] = A[p]!;
      C[i] = C[p]!;
      i = p;
    }
    A[i] = at;
    C[i] = item;
  }

  /** Remove and return the item with the earliest deadline (the heap must not be empty). */
  pop(): T {
    const A = this.at;
    const C = this.items;
    const top = C[0]!;
    const lastAt = A.pop()!;
    const lastItem = C.pop()!;
    const n = A.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && A[r]! < A[l]! ? r : l;
        if (lastAt <= A[m]!) break;
        A[i] = A[m]!;
        C[i] = C[m]!;
        i = m;
      }
      A[i] = lastAt;
      C[i] = lastItem;
    }
    return top;
  }

  clear(): void {
    this.at = [];
    this.items = [];
  }
}
