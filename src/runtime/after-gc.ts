/**
 * Run something once, after the next major (mark-compact) garbage collection.
 *
 * What the stack frees is freed for real only when V8 collects it: TCP's packet buffers are
 * ArrayBuffers, and their memory goes back to the C library when a major GC finds them
 * unreachable. Anything that wants to act on freed memory (TunLink.releaseFreedMemory) waits
 * for that GC here. The observer exists only while something waits.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks';

const waiting: Array<() => void> = [];
let observer: PerformanceObserver | undefined;

export function afterNextMajorGc(fn: () => void): void {
  waiting.push(fn);
  if (observer) return;
  observer = new PerformanceObserver((list) => {
    const major = list
      .getEntries()
      .some((e) => (((e as { detail?: { kind?: number } }).detail?.kind ?? 0) & constants.NODE_PERFORMANCE_GC_MAJOR) !== 0);
    if (!major) return;
    observer?.disconnect();
    observer = undefined;
    for (const f of waiting.splice(0)) f();
  });
  observer.observe({ entryTypes: ['gc'] });
}

/** Run `fn` after each of the next `n` major garbage collections. */
export function afterMajorGcs(n: number, fn: () => void): void {
  let left = n;
  const each = (): void => {
    fn();
    if (--left > 0) afterNextMajorGc(each);
  };
  if (left > 0) afterNextMajorGc(each);
}
