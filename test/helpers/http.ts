/**
 * Small helpers shared by the HTTP interop tests: hashes computed here, independently of
 * the server, and curl run inside a test namespace with hard time limits.
 */
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import type { NetnsTun } from './netns.js';

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** SHA-256 of the first n bytes of the /bytes pattern (byte i = i mod 256). */
export function patternHash(n: number): string {
  const h = createHash('sha256');
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i++) block[i] = i % 256;
  for (let left = n; left > 0; left -= block.length) h.update(block.subarray(0, Math.min(left, block.length)));
  return h.digest('hex');
}

/** curl inside the namespace; `-sS` so errors show, a hard time limit so nothing hangs. */
export async function curl(t: NetnsTun, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return t.exec(['curl', '-sS', '--max-time', '60', ...args], { timeoutMs: 70_000 });
}

/** SHA-256 of what curl wrote to stdout (piped through sha256sum: bodies are larger than captured output). */
export async function curlHash(t: NetnsTun, args: string[]): Promise<string> {
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = await t.exec(['bash', '-o', 'pipefail', '-c', `curl -sS --max-time 60 ${quoted} | sha256sum`], { timeoutMs: 70_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  return r.stdout.split(' ')[0]!;
}
