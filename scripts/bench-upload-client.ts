/**
 * The bulk_upload load generator: one kernel TCP connection that POSTs `bytes` to /sink as fast
 * as the kernel takes them, and reads the server's count back.
 *
 *   node bench-upload-client.js <host> <port> <bytes>   (in the client namespace, pinned to core 1)
 *
 * Why not curl: `curl -T file` moves the body through its 64 KiB upload buffer with a read(2)
 * and a send(2) each and tops out near 4.5 Gbit/s on this machine's client core, against any
 * server (the kernel peer measured the same as netstack), so it measured curl. This client
 * writes 4 MiB buffers from memory (the kernel copies them into the socket), leaving the
 * client core mostly to the kernel's TCP sender: what it measures is the server.
 *
 * Prints one JSON line: { bytes, seconds, gbps, status, counted } or { error }.
 * `seconds`: from connect() to the last byte of the response, as curl's time_total.
 */
import { connect } from 'node:net';
import { report, writeRepeated } from './bench-dist.js';

const [host = '', portArg = '', bytesArg = ''] = process.argv.slice(2);
const port = Number(portArg);
const bytes = Number(bytesArg);
if (!host || !Number.isInteger(port) || !Number.isSafeInteger(bytes) || bytes <= 0) {
  report({ error: 'usage: bench-upload-client <host> <port> <bytes>' });
  process.exit(1);
}

// One reusable 4 MiB buffer: /sink counts the bytes, their content does not matter.
const block = Buffer.alloc(4 << 20, 0x5a);

const start = performance.now();
const sock = connect({ host, port });
sock.setNoDelay(true);
let response = '';

sock.once('connect', () => {
  sock.write(
    `POST /sink HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bytes}\r\nConnection: close\r\n\r\n`,
  );
  writeRepeated(sock, block, bytes, () => {});
});
sock.setEncoding('latin1');
sock.on('data', (s: string) => {
  response += s;
  if (response.length > 1 << 16) sock.destroy(new Error('response larger than 64 KiB'));
});
sock.on('error', (err) => {
  report({ error: `upload to ${host}:${port}: ${err.message}` });
  process.exit(1);
});
sock.on('end', () => {
  const seconds = (performance.now() - start) / 1000;
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);
  const body = response.slice(response.indexOf('\r\n\r\n') + 4);
  const counted = Number(body.trim());
  report({ bytes, seconds, gbps: (bytes * 8) / seconds / 1e9, status, counted });
  process.exit(0);
});
