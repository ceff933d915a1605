/**
 * The DNS server on a Stack: runtime side of ./server.ts. UDP port 53 answers each datagram;
 * TCP port 53 reads length-prefixed queries (RFC 7766 section 8), answers each in order,
 * and closes a connection that stays idle for 10 s (RFC 7766 section 6.2.3 leaves the
 * value to the server and says idle connections should not be held long).
 */
import type { Stack } from '../stack.js';
import type { TcpServer } from '../tcp/socket.js';
import type { UdpSocket } from '../udp/socket.js';
import { DnsServer, TcpFramer, frameTcp } from './server.js';
import type { Zone } from './zone.js';

export const DNS_PORT = 53;
const TCP_IDLE_MS = 10_000;
/** Connections served at once; more are closed at accept (a bound on memory). */
const MAX_TCP_CLIENTS = 64;

export class DnsService {
  readonly server: DnsServer;
  private readonly udp: UdpSocket;
  private readonly tcp: TcpServer;
  private clients = 0;

  constructor(stack: Stack, zones: Zone[], opts: { port?: number; onError?: (err: Error) => void } = {}) {
    const port = opts.port ?? DNS_PORT;
    const onError = opts.onError ?? (() => {});
    this.server = new DnsServer(zones);
    this.udp = stack.udp.createSocket('udp4');
    this.udp.on('error', onError);
    this.udp.on('message', (msg, rinfo) => {
      // Source port 0 cannot be answered (RFC 768: "no reply" port); drop before any work.
      if (rinfo.port === 0) return;
      const res = this.server.answer(msg, 'udp');
      if (res) this.udp.send(res, rinfo.port, rinfo.address);
    });
    this.udp.bind(port);

    this.tcp = stack.createServer({ allowHalfOpen: true }, (sock) => {
      if (this.clients >= MAX_TCP_CLIENTS) {
        this.server.stats['drop.tcp-busy'] = (this.server.stats['drop.tcp-busy'] ?? 0) + 1;
        sock.destroy();
        return;
      }
      this.clients++;
      const framer = new TcpFramer();
      sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
      sock.on('data', (chunk: Buffer) => {
        for (const q of framer.push(chunk)) {
          const res = this.server.answer(q, 'tcp');
          if (res) sock.write(frameTcp(res));
        }
      });
      // The client is done asking: finish our side once the answers are written.
      sock.on('end', () => sock.end());
      sock.on('error', () => {});
      sock.on('close', () => this.clients--);
    });
    this.tcp.on('error', onError);
    this.tcp.listen(port);
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.server.stats)) out['dns.server.' + k] = v;
    return out;
  }

  close(): void {
    this.udp.close();
    this.tcp.close();
  }
}
