/**
 * `netstack get URL`: fetch one URL through the stack, on a TUN device of its own, and
 * print the journey as a numbered timeline: the DNS query and answer (netstack's UDP and
 * resolver), the three-way handshake, the request, the response, and the close into
 * TIME-WAIT (netstack's TCP). Like curl, the body goes to stdout or -o FILE and the
 * timeline to stderr (stdout when -o is given). No protocol logic here: options, wiring,
 * and one sentence for every way it can fail.
 */
import { randomInt } from 'node:crypto';
import { createWriteStream, openSync, readFileSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Argv } from 'yargs';
import { DnsClient } from '../dns/client.js';
import type { ResolverEvent } from '../dns/resolver.js';
import { TYPE, rcodeName, rdataText, typeName } from '../dns/wire.js';
import { ResponseParser } from '../http/response-parser.js';
import type { ResponseHead } from '../http/response-parser.js';
import { formatIpv4, inSubnet, parseCidr, parseIpv4 } from '../ip/addr.js';
import { silentLogger } from '../runtime/log.js';
import { Stack } from '../stack.js';
import { TcpState } from '../tcp/state.js';
import { TIMELINE_HEADER, Timeline, formatEvent, jsonEvent } from './timeline.js';
import { CliError, checkAddressesFree, explainDeviceError, openDevice } from './up.js';

export interface GetArgs {
  url: string;
  output?: string | undefined;
  resolver?: string | undefined;
  dev: string;
  host: string;
  addr: string;
  json: boolean;
  timeout: string | number;
}

export interface GetConfig {
  url: string;
  /** Host as written in the URL, and the address when it is an IPv4 literal. */
  hostname: string;
  literal: string | undefined;
  port: number;
  /** Path and query, e.g. "/file?x=1". */
  target: string;
  /** The Host header's value. */
  hostHeader: string;
  output: string | undefined;
  resolver: string | undefined;
  dev: string;
  hostAddr: number;
  prefix: number;
  addr: number;
  json: boolean;
  timeoutMs: number;
}

/** The response head's bound: larger than the proxy's 16 KiB, as a client meets bigger heads than an upstream should send. */
const GET_MAX_HEADER_BYTES = 64 * 1024;

export const GET_DEFAULTS = { dev: 'netstack1', host: '10.78.0.1/24', addr: '10.78.0.2', timeout: 30 } as const;

export function getOptions(y: Argv): Argv<GetArgs> {
  return y
    .positional('url', { type: 'string', describe: 'the http:// URL to fetch', demandOption: true })
    .option('output', { alias: 'o', type: 'string', requiresArg: true, describe: 'write the body to FILE (the timeline then goes to stdout)' })
    .option('resolver', { type: 'string', requiresArg: true, describe: 'DNS server to ask (default: the first non-loopback nameserver of /etc/resolv.conf, else the --host address)' })
    .option('dev', { type: 'string', requiresArg: true, default: GET_DEFAULTS.dev, describe: 'name of the TUN interface to create' })
    .option('host', { type: 'string', requiresArg: true, default: GET_DEFAULTS.host, describe: "the kernel's side of the link, as CIDR" })
    .option('addr', { type: 'string', requiresArg: true, default: GET_DEFAULTS.addr, describe: "the stack's address (inside the --host subnet)" })
    .option('json', { type: 'boolean', default: false, describe: 'print the timeline as JSON lines' })
    .option('timeout', { type: 'string', requiresArg: true, default: String(GET_DEFAULTS.timeout), describe: 'give up after this many seconds' })
    .example('sudo netstack get http://web.test:8000/file -o file', 'DNS, handshake, request, response, close: each step numbered')
    .example('sudo netstack get --resolver 10.77.0.2 http://netstack.test/', 'ask a `netstack up --dns` for the name') as unknown as Argv<GetArgs>;
}

/** Check everything before touching the system. Throws CliError with one sentence. */
export function validateGetArgs(a: GetArgs): GetConfig {
  const text = String(a.url ?? '').trim();
  if (/^https:/i.test(text)) throw new CliError('https:// is not supported: the stack has no TLS yet, so fetch an http:// URL');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliError(`"${text}" is not a URL: write it like http://web.test:8000/file`);
  }
  if (url.protocol !== 'http:') throw new CliError(`only http:// URLs can be fetched (got ${url.protocol}//)`);
  if (url.username || url.password) throw new CliError('user names and passwords in the URL are not supported');
  if (url.hostname.startsWith('[')) throw new CliError('IPv6 addresses are not supported: the stack speaks IPv4 only');
  const literal = parseIpv4(url.hostname) !== undefined ? url.hostname : undefined;
  const port = url.port === '' ? 80 : Number(url.port);
  if (port === 0) throw new CliError('port 0 cannot be connected to: give a port from 1 to 65535');
  const host = parseCidr(a.host);
  if (!host) throw new CliError(`--host must be an IPv4 address with a prefix length, like 10.78.0.1/24 (got "${a.host}")`);
  const addr = parseIpv4(a.addr);
  if (addr === undefined) throw new CliError(`--addr must be an IPv4 address like 10.78.0.2 (got "${a.addr}")`);
  if (!inSubnet(addr, host.addr, host.prefix) || addr === host.addr) throw new CliError(`--addr ${a.addr} must be another address inside the --host subnet ${a.host}`);
  if (!/^[^\s/:]{1,15}$/.test(a.dev)) throw new CliError(`--dev must be 1 to 15 characters without spaces, "/" or ":" (got "${a.dev}")`);
  if (a.resolver !== undefined && parseIpv4(a.resolver) === undefined) throw new CliError(`--resolver must be an IPv4 address (got "${a.resolver}")`);
  const seconds = Number(a.timeout);
  if (!/^\d+(\.\d+)?$/.test(String(a.timeout)) || seconds <= 0 || seconds > 3600) throw new CliError(`--timeout must be a number of seconds from 0 to 3600 (got "${a.timeout}")`);
  if (a.output !== undefined && a.output.trim() === '') throw new CliError('-o needs a file name');
  return {
    url: url.href,
    hostname: url.hostname,
    literal,
    port,
    target: (url.pathname || '/') + url.search,
    hostHeader: url.host,
    output: a.output,
    resolver: a.resolver,
    dev: a.dev,
    hostAddr: host.addr,
    prefix: host.prefix,
    addr,
    json: a.json,
    timeoutMs: seconds * 1000,
  };
}

/**
 * The first IPv4 nameserver of resolv.conf that the TUN can reach (not loopback: a
 * resolver on 127.0.0.53 lives in the host's own stack), else undefined.
 */
export function resolverFromResolvConf(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const v = m ? parseIpv4(m[1]!) : undefined;
    if (v !== undefined && v >>> 24 !== 127 && v !== 0) return m![1]!;
  }
  return undefined;
}

function defaultResolver(cfg: GetConfig): string {
  try {
    const found = resolverFromResolvConf(readFileSync('/etc/resolv.conf', 'utf8'));
    if (found) return found;
  } catch {
    // No resolv.conf: fall back to the host side.
  }
  return formatIpv4(cfg.hostAddr);
}

function describeResolverEvent(e: ResolverEvent, stackAddr: string): { what: string; detail: Record<string, unknown> } | undefined {
  switch (e.kind) {
    case 'query': {
      const via = e.transport === 'udp' ? `UDP ${stackAddr}:${e.localPort}` : 'TCP';
      return {
        what: `query  ${typeName(e.type)} ${e.name}  →  ${e.server.address}:${e.server.port}  (${via}, id 0x${e.id.toString(16).padStart(4, '0')})`,
        detail: { dns: 'query', name: e.name, type: typeName(e.type), transport: e.transport, server: `${e.server.address}:${e.server.port}`, localPort: e.localPort, id: e.id, attempt: e.attempt },
      };
    }
    case 'response': {
      const detail = { dns: 'answer', name: e.name, rcode: rcodeName(e.rcode), tc: e.tc, id: e.id, answers: e.answers.map((r) => `${r.name} ${r.ttl} ${r.type === 'OTHER' ? typeName(r.code) : r.type} ${rdataText(r)}`) };
      if (e.tc) return { what: `answer truncated (TC): asking again over TCP`, detail };
      if (e.rcode !== 0 || e.answers.length === 0) return { what: `answer ${rcodeName(e.rcode)} for ${e.name} (${e.answers.length} records)`, detail };
      const recs = e.answers.map((r) => `${r.name} ${r.type === 'OTHER' ? typeName(r.code) : r.type} ${rdataText(r)}  TTL ${r.ttl}`);
      return { what: `answer ${recs.join(', ')}`, detail };
    }
    case 'timeout':
      return { what: `no answer to attempt ${e.attempt}: asking again from a new port with a new ID`, detail: { dns: 'timeout', attempt: e.attempt } };
    case 'ignored':
      return { what: `ignored a datagram that does not match the query (${e.reason})`, detail: { dns: 'ignored', reason: e.reason } };
    case 'cache':
      return undefined;
  }
}

/** Run the journey. Resolves when the body is written and the connection closed. */
export async function runGet(cfg: GetConfig): Promise<void> {
  let file: WriteStream | undefined;
  if (cfg.output !== undefined) {
    try {
      // Opened synchronously so a bad path fails before any device is created.
      file = createWriteStream('', { fd: openSync(cfg.output, 'w') });
    } catch (err) {
      throw new CliError(`cannot write ${cfg.output}: ${(err as Error).message}`);
    }
  }
  const body: Writable = file ?? process.stdout;
  const timelineOut: Writable = file ? process.stdout : process.stderr;
  checkAddressesFree(cfg);
  const tun = (() => {
    try {
      return openDevice({ ...cfg, mtu: 1500 });
    } catch (err) {
      throw err instanceof CliError ? err : explainDeviceError(err, cfg.dev);
    }
  })();

  let stack: Stack | undefined;
  let dns: DnsClient | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const clock = { now: () => performance.now() };
    const timeline = new Timeline(() => clock.now());
    if (!cfg.json) timelineOut.write(TIMELINE_HEADER + '\n');
    timeline.onEvent((e) => timelineOut.write((cfg.json ? jsonEvent(e) : formatEvent(e)) + '\n'));
    const s = new Stack({ link: timeline.tap(tun), addr: cfg.addr, logger: silentLogger });
    stack = s;
    s.onTransition((e) => timeline.onTransition(e));
    const stackAddr = formatIpv4(cfg.addr);

    let phase = 'the DNS answer';
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CliError(`timed out after ${cfg.timeoutMs / 1000} s waiting for ${phase}`)), cfg.timeoutMs);
    });
    timedOut.catch(() => {}); // raced below at every step; never left unhandled

    // 1. DNS, unless the URL names an address.
    let ip = cfg.literal;
    if (ip === undefined) {
      const server = cfg.resolver ?? defaultResolver(cfg);
      const client = new DnsClient(s, {
        servers: [server],
        trace: (e) => {
          const d = describeResolverEvent(e, stackAddr);
          if (d) timeline.add('DNS', d.what, d.detail);
        },
      });
      dns = client;
      const result = await Promise.race([client.resolve(cfg.hostname, TYPE.A), timedOut]).catch((err: NodeJS.ErrnoException) => {
        throw dnsError(err, cfg.hostname, server);
      });
      const first = result.records[0];
      if (!first || first.type !== 'A') throw new CliError(`${cfg.hostname} has no IPv4 address`);
      ip = first.address;
    }

    // 2. The connection, from a port we choose, so the timeline follows it from its first transition.
    phase = `the TCP handshake with ${ip}:${cfg.port}`;
    const localPort = randomInt(49152, 65536);
    timeline.follow(localPort);
    const sock = s.connect({ host: ip, port: cfg.port, localPort, allowHalfOpen: true });
    const closed = new Promise<void>((resolve) => {
      s.onTransition((e) => {
        if (e.conn.localPort === localPort && (e.to === TcpState.TIME_WAIT || e.to === TcpState.CLOSED)) resolve();
      });
    });
    const failed = new Promise<never>((_, reject) => {
      sock.on('error', (err: NodeJS.ErrnoException) => reject(connectError(err, ip!, cfg.port, phase)));
    });
    failed.catch(() => {});
    await Promise.race([new Promise<void>((resolve) => sock.once('connect', () => resolve())), failed, timedOut]);

    // 3. The request.
    phase = 'the HTTP response';
    const headers: Array<[string, string]> = [
      ['Host', cfg.hostHeader],
      ['User-Agent', 'netstack-get/0.1'],
      ['Accept', '*/*'],
    ];
    const request = `GET ${cfg.target} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    timeline.add('HTTP', `→ GET ${cfg.target} HTTP/1.1  Host: ${cfg.hostHeader}  (${headers.length} headers, ${request.length} bytes)`, { http: 'request', method: 'GET', target: cfg.target, bytes: request.length });
    sock.write(request);

    // 4. The response, streamed to the output.
    const parser = new ResponseParser('GET', { maxHeaderBytes: GET_MAX_HEADER_BYTES });
    const segmentsBefore = timeline.dataSegmentsIn;
    const bodyDone = new Promise<void>((resolve, reject) => {
      const drain = () => {
        // Each event consumes input or ends the parser: bounded by the bytes received.
        for (let ev = parser.next(); ev; ev = parser.next()) {
          if (ev.type === 'head') {
            const h = ev.head;
            timeline.add('HTTP', `← HTTP/${h.version} ${h.status} ${h.reason}  ${framingText(h)}`, { http: 'response', status: h.status, reason: h.reason, headers: h.fields.length });
            phase = 'the response body';
          } else if (ev.type === 'body') {
            // Backpressure: a slow disk or reader closes the TCP window instead of filling memory.
            // ev.data is a view of a chunk the socket handed over for good (never reused).
            if (!body.write(ev.data)) {
              sock.pause();
              body.once('drain', () => sock.resume());
            }
          } else if (ev.type === 'end') {
            const segs = timeline.dataSegmentsIn - segmentsBefore;
            timeline.add('HTTP', `body complete: ${parser.bodyBytes} bytes in ${segs} segments`, { http: 'body', bytes: parser.bodyBytes, segments: segs });
            resolve();
          } else if (ev.type === 'error') {
            reject(new CliError(`bad response from ${ip}:${cfg.port}: ${describeResponseError(ev.reason, parser.bodyBytes)}`));
          }
          // 'informational' (1xx, RFC 9110 §15.2): the final response follows; nothing to show.
        }
      };
      sock.on('data', (chunk: Buffer) => {
        parser.feed(chunk);
        drain();
      });
      sock.on('end', () => {
        parser.end();
        drain();
      });
    });
    await Promise.race([bodyDone, failed, timedOut]);

    // 5. The close: our FIN (or our answer to theirs), into TIME-WAIT or CLOSED.
    phase = 'the connection to close';
    sock.end();
    await Promise.race([closed, failed, timedOut]);
    if (sock.state === TcpState.TIME_WAIT) {
      timeline.add('TCP', 'TIME-WAIT: the stack would hold the connection for 2×MSL (60 s); netstack get exits now', { tcp: 'time-wait' });
    }
  } finally {
    if (timer) clearTimeout(timer);
    dns?.close();
    stack?.close(); // closes the device: the kernel removes the interface
    if (file) await new Promise<void>((resolve) => file.end(resolve));
  }
}

/** How the response's body is delimited, as the timeline's response line shows it. */
function framingText(h: ResponseHead): string {
  switch (h.framing) {
    case 'length':
      return `Content-Length: ${h.contentLength}`;
    case 'chunked':
      return 'Transfer-Encoding: chunked';
    case 'close':
      return 'body until close';
    case 'none':
      return 'no body';
  }
}

/** The response parser's reasons, as the second half of one sentence. */
const RESPONSE_ERRORS: Record<string, string> = {
  'closed-before-response': 'the server closed the connection before the response head was complete',
  'truncated-header': 'the server closed the connection before the response head was complete',
  'header-too-large': `the response head is larger than ${GET_MAX_HEADER_BYTES} bytes`,
  'bad-status-line': 'the first line is not an HTTP/1.x status line',
  'unsupported-version': 'the status line names an HTTP version other than 1.0 or 1.1',
  'bad-status-code': 'the status code is below 100',
  'unexpected-switching-protocols': 'the server switched protocols (101) though no upgrade was asked for',
  'too-many-informational': 'too many interim (1xx) responses before the final one',
  'too-many-fields': 'more than 100 header fields',
  'bare-lf': 'a line ends in LF without CR',
  'bare-cr': 'a CR appears inside a line',
  'obs-fold': 'a header field is folded over several lines (obs-fold)',
  'missing-colon': 'a header line has no colon',
  'empty-field-name': 'a header line has an empty field name',
  'space-before-colon': 'a header field name is followed by whitespace before its colon',
  'bad-field-name': 'a header field name holds characters a token may not',
  'bad-field-value': 'a header field value holds control characters',
  'transfer-encoding-in-http10': 'an HTTP/1.0 response has Transfer-Encoding',
  'content-length-and-transfer-encoding': 'the response has both Content-Length and Transfer-Encoding',
  'unsupported-transfer-coding': 'the Transfer-Encoding is not exactly "chunked"',
  'bad-content-length': 'the Content-Length is not a number',
  'conflicting-content-length': 'the response has differing Content-Length values',
  'content-length-too-large': 'the Content-Length has more than 15 digits',
  'chunk-line-too-long': 'a chunk-size line is longer than 4096 bytes',
  'bad-chunk-size': 'a chunk size is not a hexadecimal number',
  'bad-chunk-extension': 'a chunk extension is malformed',
  'chunk-size-overflow': 'a chunk size is too large',
  'bad-chunk-terminator': 'a chunk is not followed by CRLF',
  'trailers-too-large': 'the trailer section is too large',
  'too-many-trailer-fields': 'more than 100 trailer fields',
};

export function describeResponseError(reason: string, bodyBytes: number): string {
  if (reason === 'truncated-body') return `the server closed the connection after ${bodyBytes} bytes of the body`;
  return RESPONSE_ERRORS[reason] ?? `it breaks an HTTP/1.1 rule (${reason})`;
}

function dnsError(err: NodeJS.ErrnoException, name: string, server: string): CliError {
  if (err instanceof CliError) return err;
  switch (err.code) {
    case 'ENOTFOUND':
      return new CliError(`${name}: name not found (the DNS server ${server} answered NXDOMAIN)`);
    case 'ENODATA':
      return new CliError(`${name} has no IPv4 address (no A record at ${server})`);
    case 'ETIMEOUT':
      return new CliError(`no answer from the DNS server ${server} about ${name}: it timed out (use --resolver to ask another)`);
    default:
      return new CliError(`the DNS lookup of ${name} at ${server} failed: ${err.code} (${err.message})`);
  }
}

function connectError(err: NodeJS.ErrnoException, ip: string, port: number, phase: string): CliError {
  if (err.code === 'ECONNREFUSED') return new CliError(`connection refused by ${ip}:${port}: nothing listens there`);
  if (err.code === 'ETIMEDOUT') return new CliError(`the connection to ${ip}:${port} timed out`);
  if (err.code === 'ECONNRESET') return new CliError(`the connection to ${ip}:${port} was reset while waiting for ${phase}`);
  return new CliError(`the connection to ${ip}:${port} failed (${err.code ?? err.message}) while waiting for ${phase}`);
}
