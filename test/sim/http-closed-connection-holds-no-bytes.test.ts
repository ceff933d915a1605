/**
 * A closed HTTP connection leaves the server's deadline queue at once (nothing there keeps it
 * alive until its old deadline), and whatever else may still hold it (a handler that never
 * finishes) does not hold the request bytes it had buffered: 500 clients that sent megabytes
 * and reset would otherwise pin all of it.
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

it('a client that resets mid-body: its connection leaves the deadline queue at once and holds none of its bytes', async () => {
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
  const before = [...queuedConnections(http)];
  expect(before).toHaveLength(1);
  const conn = before[0]!;
  expect(!conn.closed && conn.parser.bufferedBytes > 0).toBe(true);

  socket.destroy(); // a RST to the server
  await sim.clock.sleep(100);
  expect(http.stats['socket_error_ECONNRESET']).toBe(1);
  expect(queuedConnections(http)).toEqual([]); // taken out when it closed, not when its deadline comes
  expect(conn.closed).toBe(true);
  expect(conn.parser.bufferedBytes).toBe(0);
});
