/**
 * The HTTP application bench-server runs on netstack: the routes of `netstack up`
 * (src/http/routes.ts) served by src/http/server.ts on the stack's own TCP, plus one
 * bench-only route:
 *
 *   POST /sink   reads the request body, counts it and answers with the count.
 *
 * /sink exists so the upload workload measures one direction only (`POST /echo` streams
 * the body back, which doubles the traffic). kernel-peer.ts serves the same /sink.
 */
import type * as RoutesModule from '../src/http/routes.js';
import type * as ServerModule from '../src/http/server.js';
import type { HttpRequest, HttpResponse, RequestHead } from '../src/http/server.js';
import type { Stack } from '../src/stack.js';
import { importDist } from './bench-dist.js';

/** Largest body /sink accepts: more than the bench ever sends. */
const SINK_MAX_BODY = 2 ** 34;

export async function startHttpApp(stack: Stack, port: number): Promise<{ stats(): Record<string, number> }> {
  const { HttpServer } = await importDist<typeof ServerModule>('http/server.js');
  const routes = await importDist<typeof RoutesModule>('http/routes.js');

  const app = routes.createNetstackApp(
    {
      addr: stack.name,
      startedAt: Date.now(),
      stats: () => stack.stats(),
      connections: (limit?: number, offset?: number) => stack.connections(limit, offset),
      connectionStates: () => stack.connectionStates(),
    },
    // The bench client is the host side of the link, which `netstack up` shows everything:
    // the status page it measures is the full one, as the kernel peer's is.
    { canSeeDetails: () => true },
  );
  const handler = Object.assign(
    (req: HttpRequest, res: HttpResponse): void | Promise<void> =>
      req.method === 'POST' && req.path === '/sink' ? sink(req, res) : app(req, res),
    {
      maxBodyBytes: (head: RequestHead): number =>
        head.target === '/sink' ? SINK_MAX_BODY : (app.maxBodyBytes?.(head) ?? routes.DEFAULT_MAX_BODY),
    },
  );

  const http = new HttpServer({ handler, clock: stack.clock });
  // As `netstack up` serves it: the fast path, connections as plain TcpStreams.
  stack.createServer({ onStream: (stream) => http.handleStream(stream) }).listen(port, 4096);
  return { stats: () => ({ ...http.stats }) };
}

async function sink(req: HttpRequest, res: HttpResponse): Promise<void> {
  let n = 0;
  for await (const chunk of req.body) n += chunk.byteLength;
  res.setHeader('Content-Type', 'text/plain');
  res.end(`${n}\n`);
}
