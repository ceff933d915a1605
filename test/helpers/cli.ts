/**
 * Helpers for tests that run the `netstack` CLI as a child process.
 */
import type { ChildProcess } from 'node:child_process';

/** Wait (bounded) until the child prints a line matching `re` on stdout. */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; got: ${buf}`)), timeoutMs);
    child.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      const line = buf.split('\n').find((l) => re.test(l));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`the CLI exited (code ${code}) before printing ${re}; stdout: ${buf}`));
    });
  });
}
