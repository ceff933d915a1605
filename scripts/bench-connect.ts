/**
 * Open `count` kernel TCP connections with at most `maxInFlight` handshakes pending at once (a
 * burst of 10,000 SYNs would only measure the listener's SYN queue). Each connection that
 * succeeds goes to `onConnect`; once every attempt has settled, `onDone` gets the tally with
 * the error codes of the failures. Shared by the scale and hoarders load generators.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export interface ConnectTally {
  established: number;
  failed: number;
  errors: Record<string, number>;
}

export function openConnections(
  host: string,
  port: number,
  count: number,
  maxInFlight: number,
  onConnect: (s: Socket) => void,
  onDone: (tally: ConnectTally) => void,
): void {
  const errors = new Map<string, number>();
  let started = 0;
  let established = 0;
  let failed = 0;
  let inFlight = 0;

  const settle = () => {
    inFlight--;
    if (established + failed === count) onDone({ established, failed, errors: Object.fromEntries(errors) });
    else startMore();
  };

  const startMore = () => {
    while (inFlight < maxInFlight && started < count) {
      started++;
      inFlight++;
      let settled = false;
      const s = connect({ host, port });
      s.setTimeout(20_000);
      s.once('connect', () => {
        s.setTimeout(0);
        settled = true;
        established++;
        onConnect(s);
        settle();
      });
      s.on('timeout', () => s.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })));
      s.on('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? err.message;
        errors.set(code, (errors.get(code) ?? 0) + 1);
        if (!settled) {
          settled = true;
          failed++;
          settle();
        }
      });
    }
  };

  startMore();
}
