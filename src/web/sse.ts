/**
 * Server-Sent Events (the WHATWG HTML standard's `text/event-stream`) and the two kinds of
 * stream the live view writes: a coalescing one for the page (a slow browser gets the newest
 * state, never a backlog) and a bounded line queue for `netstack trace`.
 */

/** One event: `event:` and `id:` lines, the JSON on one `data:` line (JSON has no raw newline). */
export function sseFrame(event: string, data: unknown, id?: number): string {
  let frame = `event: ${event}\n`;
  if (id !== undefined) frame += `id: ${id}\n`;
  return frame + `data: ${JSON.stringify(data)}\n\n`;
}

/** A comment line: ignored by EventSource, keeps the connection busy (heartbeat). */
export function sseComment(text: string): string {
  return `: ${text.replace(/[\r\n]+/g, ' ')}\n\n`;
}

/**
 * Frames to one client, at most one write in flight. While a write waits (the client reads
 * slowly), a newer frame of an event name replaces the older one: what reaches a slow client
 * is the latest state of each kind, and memory per client stays bounded.
 */
export class CoalescingStream {
  private readonly pending = new Map<string, string>();
  private writing = false;
  private done = false;
  /** Frames replaced before they were written. */
  coalesced = 0;
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  constructor(private readonly write: (chunk: string) => Promise<void>) {
    this.closedPromise = new Promise((r) => (this.resolveClosed = r));
  }

  /** Resolves when a write failed (the client went away) or close() was called. */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  get isClosed(): boolean {
    return this.done;
  }

  send(kind: string, frame: string): void {
    if (this.done) return;
    if (this.pending.has(kind)) this.coalesced++;
    this.pending.set(kind, frame);
    if (!this.writing) void this.pump();
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.pending.clear();
    this.resolveClosed();
  }

  private async pump(): Promise<void> {
    this.writing = true;
    try {
      while (this.pending.size > 0 && !this.done) {
        const chunk = [...this.pending.values()].join('');
        this.pending.clear();
        await this.write(chunk);
      }
    } catch {
      this.close();
    } finally {
      this.writing = false;
    }
  }
}

/**
 * Lines to one client in order, at most `maxLines` waiting; beyond that lines are dropped and
 * a line saying how many follows once the client catches up.
 */
export class LineStream {
  private queue: string[] = [];
  private writing = false;
  private done = false;
  dropped = 0;
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  constructor(
    private readonly write: (chunk: string) => Promise<void>,
    readonly maxLines = 10_000,
  ) {
    this.closedPromise = new Promise((r) => (this.resolveClosed = r));
  }

  get closed(): Promise<void> {
    return this.closedPromise;
  }

  line(text: string): void {
    if (this.done) return;
    if (this.queue.length >= this.maxLines) {
      this.dropped++;
      return;
    }
    this.queue.push(text + '\n');
    if (!this.writing) void this.pump();
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.queue = [];
    this.resolveClosed();
  }

  private async pump(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0 && !this.done) {
        const chunk = this.queue.join('');
        this.queue = [];
        await this.write(chunk);
        if (this.dropped > 0) {
          this.queue.push(`… ${this.dropped} event${this.dropped === 1 ? '' : 's'} dropped (the reader was too slow)\n`);
          this.dropped = 0;
        }
      }
    } catch {
      this.close();
    } finally {
      this.writing = false;
    }
  }
}
