/**
 * A long-running worker process that speaks in JSON lines (bench-server, kernel-peer,
 * bench-scale-client): commands go to its stdin, one JSON object per line comes back on
 * its stdout. Every wait has a deadline; if the process dies, waiting callers get an
 * error carrying the end of its stderr.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { spawnTracked } from './netns.js';

export type Message = Record<string, unknown>;

interface Waiter {
  key: string;
  resolve: (m: Message) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** stderr kept for error messages. */
const STDERR_TAIL = 4096;
/** Unclaimed messages kept; a chatty worker cannot grow our memory. */
const MAX_QUEUE = 1000;

export class JsonLineProcess {
  readonly child: ChildProcess;
  private readonly queue: Message[] = [];
  private readonly waiters: Waiter[] = [];
  private stderrTail = '';
  private exit: string | undefined;
  private readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    argv: readonly string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawnTracked(argv, { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.child.stdin!.on('error', () => {}); // it may exit before reading everything
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.onLine(line));
    this.child.stderr!.on('data', (b: Buffer) => {
      this.stderrTail = (this.stderrTail + b.toString('utf8')).slice(-STDERR_TAIL);
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = signal ? `killed by ${signal}` : `exited with code ${code}`;
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(this.failure(`${this.exit} while waiting for "${w.key}"`));
        }
        resolve();
      });
      this.child.once('error', (err) => {
        this.exit = `could not start: ${err.message}`;
        resolve();
      });
    });
  }

  /** The next message carrying `key` (messages carrying "error" fail the wait). */
  waitFor(key: string, timeoutMs: number): Promise<Message> {
    const i = this.queue.findIndex((m) => key in m || 'error' in m);
    if (i >= 0) {
      const [m] = this.queue.splice(i, 1);
      return 'error' in m! && !(key in m!) ? Promise.reject(this.failure(String(m!['error']))) : Promise.resolve(m!);
    }
    if (this.exit) return Promise.reject(this.failure(`${this.exit} before "${key}"`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const at = this.waiters.findIndex((w) => w.timer === timer);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(this.failure(`no "${key}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push({ key, resolve, reject, timer });
    });
  }

  /** Send a command line and wait for the reply carrying `key`. */
  request(command: string, key: string, timeoutMs = 15_000): Promise<Message> {
    this.child.stdin!.write(`${command}\n`);
    return this.waitFor(key, timeoutMs);
  }

  /** Ask it to quit (it writes any --cpu-prof profile then); kill it if it does not. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.exit) return;
    this.child.stdin!.end('quit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  private onLine(line: string): void {
    let m: Message;
    try {
      const v: unknown = JSON.parse(line);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return;
      m = v as Message;
    } catch {
      return; // not ours (e.g. a stray log line)
    }
    const i = this.waiters.findIndex((w) => w.key in m || 'error' in m);
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      clearTimeout(w!.timer);
      if ('error' in m && !(w!.key in m)) w!.reject(this.failure(String(m['error'])));
      else w!.resolve(m);
      return;
    }
    if (this.queue.length < MAX_QUEUE) this.queue.push(m);
  }

  private failure(what: string): Error {
    const tail = this.stderrTail.trim();
    return new Error(`${this.name}: ${what}${tail ? `\n--- its stderr ---\n${tail}` : ''}`);
  }
}
