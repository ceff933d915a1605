/**
 * Load generator for workload 6, "scale": open N kernel TCP connections to the server
 * and keep them established and idle, so the server's memory per connection can be read.
 *
 *   node bench-scale-client.js <host> <port> <count> [inFlight]
 *
 * At most `inFlight` handshakes are pending at once (a burst of 10,000 SYNs would only
 * measure the listener's SYN queue). Prints {"established": N, "failed": F, "seconds": S}
 * when every attempt has settled, then holds the connections until stdin says "quit" or
 * closes, and exits. Started by bench.ts in the client namespace with a raised fd limit.
 */
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { openConnections } from './bench-connect.js';
import { report } from './bench-dist.js';

const [host, portArg, countArg, inFlightArg] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);
const maxInFlight = Number(inFlightArg ?? 200);
if (!host || !Number.isInteger(port) || !Number.isInteger(count) || count < 1 || !(maxInFlight >= 1)) {
  throw new Error('usage: bench-scale-client <host> <port> <count> [inFlight]');
}

const sockets: Socket[] = [];
const t0 = performance.now();

openConnections(
  host,
  port,
  count,
  maxInFlight,
  (s) => sockets.push(s),
  ({ established, failed, errors }) => report({ established, failed, seconds: (performance.now() - t0) / 1000, errors }),
);

function quit(): void {
  for (const s of sockets) s.destroy();
  process.exit(0);
}
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === 'quit') quit();
});
rl.on('close', quit);
