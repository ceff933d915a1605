/**
 * How the bench's worker processes reach netstack: the compiled JavaScript in `dist/`.
 *
 * Workers (bench-server, bench-memory, ...) are TypeScript files type-checked against
 * `src/` (`typeof import('../src/stack.js')`), but at run time they are plain `node`
 * processes importing `dist/` (built by `tsc -p tsconfig.build.json`), so no TypeScript
 * loader sits in the measured process. bench.ts passes the absolute dist directory in
 * NETSTACK_DIST.
 */
import { pathToFileURL } from 'node:url';
import { getHeapSpaceStatistics } from 'node:v8';
import { join } from 'node:path';

/** Import `dist/<rel>` (e.g. "stack.js"); typed by the caller as `typeof import('../src/<rel>')`. */
export async function importDist<T>(rel: string): Promise<T> {
  const dir = process.env['NETSTACK_DIST'];
  if (!dir) throw new Error('NETSTACK_DIST is not set (workers are started by scripts/bench.ts)');
  return (await import(pathToFileURL(join(dir, rel)).href)) as T;
}

/**
 * Memory of this process, after a full garbage collection when node runs with --expose-gc.
 * `newSpace`: bytes V8's young generation holds in memory (part of rss). It grows to 32 MiB
 * under a burst of allocation and shrinks back at a GC that sees a low allocation rate (a
 * TunLink asks for one once it has been quiet for some seconds: src/runtime/idle-memory.ts),
 * so it says whether an rss sample caught it grown.
 */
export function measureMemory(): { rss: number; heapUsed: number; external: number; arrayBuffers: number; newSpace: number; gc: boolean } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    // Twice: the first pass may only make objects with finalizers collectable.
    gc();
    gc();
  }
  const m = process.memoryUsage();
  const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? NaN;
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, newSpace, gc: gc !== undefined };
}

/** One JSON line on stdout: how every worker reports to bench.ts. */
export function report(msg: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(msg)}\n`);
}

/**
 * Write `total` bytes to `w` as repeats of `chunk` (the last one cut short), honouring
 * backpressure (wait for 'drain'), then call `done`. The bulk senders of the bench workers.
 */
export function writeRepeated(w: NodeJS.WritableStream, chunk: Uint8Array, total: number, done: () => void): void {
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      const n = Math.min(chunk.length, total - sent);
      sent += n;
      if (!w.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        w.once('drain', pump);
        return;
      }
    }
    done();
  };
  pump();
}
