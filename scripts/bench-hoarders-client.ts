/**
 * Load generator for the "hoarders" workload: N kernel TCP clients that each POST a large
 * body to /echo as fast as the server lets them and never read the echo, so the server's
 * buffers (receive window, send buffer, whatever the application queues) fill up. How much
 * memory the server spends on them, and gives back when they leave, is the measurement.
 *
 *   node bench-hoarders-client.js <host> <port> <clients> <bodyBytes> <holdSeconds>
 *
 * Prints {"hoarding": {connected, failed, bytesSent}} once every client has connected and
 * `holdSeconds` have passed writing; then on "quit" (or stdin closing) resets every
 * connection (destroy with unread data: the kernel sends RST), prints {"gone": true} and exits.
 */
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { openConnections } from './bench-connect.js';
import { report } from './bench-dist.js';

const [host, portArg, clientsArg, bodyArg, holdArg] = process.argv.slice(2);
const port = Number(portArg);
const clients = Number(clientsArg);
const bodyBytes = Number(bodyArg);
const holdSeconds = Number(holdArg);
if (!host || !Number.isInteger(port) || !(clients >= 1) || !(bodyBytes >= 1) || !(holdSeconds > 0)) {
  throw new Error('usage: bench-hoarders-client <host> <port> <clients> <bodyBytes> <holdSeconds>');
}

const CHUNK = Buffer.alloc(64 * 1024, 0x61);
const MAX_IN_FLIGHT = 100;
const sockets: Socket[] = [];
let bytesSent = 0;

/** Write the body as fast as the connection takes it; never read. */
function hoard(s: Socket): void {
  let left = bodyBytes;
  s.pause();
  s.write(`POST /echo HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bodyBytes}\r\n\r\n`);
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      bytesSent += n;
      if (!s.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return;
    }
  };
  s.on('drain', pump);
  pump();
}

openConnections(
  host,
  port,
  clients,
  MAX_IN_FLIGHT,
  (s) => {
    sockets.push(s);
    hoard(s);
  },
  ({ established, failed }) => setTimeout(() => report({ hoarding: { connected: established, failed, bytesSent } }), holdSeconds * 1000),
);

function quit(): void {
  for (const s of sockets) s.resetAndDestroy();
  report({ gone: true });
  setTimeout(() => process.exit(0), 200);
}
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === 'quit') quit();
});
rl.on('close', quit);
