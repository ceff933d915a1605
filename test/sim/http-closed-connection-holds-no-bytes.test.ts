/**
 * A closed HTTP connection may stay reachable a while: the server's deadline queue drops stale
 * entries lazily (when they come up, or when they pile up), and each entry holds its connection.
 * Such a connection must not keep the request bytes it had buffered alive with it: 500 clients
 * that sent megabytes and reset would otherwise pin all of it until their timeouts.
 */
import { expect, it } from 'vitest';
import { HttpServer } from '../../src/http/server.js';
import { B_ADDR, createSim } from '../helpers/sim.js';

/** What the deadline queue holds: its heap's connections (private fields, read for this check only). */
interface Queued {
  closed: boolean;
  parser: { bufferedBytes: number };
}
function queuedConnections(http: HttpServer): Queued[] {
  return (http.deadlines as unknown as { heap: { items: Queued[] } }).heap.items;
}

it('a client that resets mid-body leaves, in the deadline queue, a closed connection holding none of its bytes', async () => {
  const sim = createSim({ seed: 11 });
  // A handler that never reads the body: the bytes wait in the connection's parser.
  const http = new HttpServer({ handler: () => new Promise<void>(() => {}), clock: sim.clock });
  sim.b.createServer({ onStream: (s) => http.handleStream(s) }).listen(80);
  await sim.clock.sleep(1);

  const socket = sim.a.connect({ host: B_ADDR, port: 80 });
  socket.on('error', () => {});
  socket.write('POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: 1000000\r\n\r\n');
  socket.write(Buffer.alloc(200_000, 0x61));
  await sim.clock.sleep(2000);
  const before = queuedConnections(http);
  expect(before.some((c) => !c.closed && c.parser.bufferedBytes > 0)).toBe(true);

  socket.destroy(); // a RST to the server
  await sim.clock.sleep(100);
  expect(http.stats['socket_error_ECONNRESET']).toBe(1);
  const after = queuedConnections(http);
  expect(after.length).toBeGreaterThan(0); // the stale entry waits for its time
  for (const c of after) {
    expect(c.closed).toBe(true);
    expect(c.parser.bufferedBytes).toBe(0);
  }
});
