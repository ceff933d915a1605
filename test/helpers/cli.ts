/**
 * Helpers for tests that run the `netstack` CLI as a child process.
 */
import type { ChildProcess } from 'node:child_process';
import { onTestFinished } from 'vitest';
import type { Netns } from './netns.js';

/**
 * Start a long-running command (e.g. `netstack up`) inside `ns` with stdout and stderr piped;
 * `stderr()` is everything it printed there so far. Killed (SIGKILL) when the test ends if
 * it is still running.
 */
export function spawnInNs(ns: Netns, argv: string[], cwd: string): { child: ChildProcess; stderr: () => string } {
  const child = ns.spawn(argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, stderr: () => stderr };
}

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
