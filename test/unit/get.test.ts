/**
 * The parts of `netstack get` that need no device: URL and option checks (one sentence
 * each), the resolver picked from resolv.conf, a bad response worded as one sentence,
 * and the timeline's choice of lines from a scripted connection.
 */
import { describe, expect, it } from 'vitest';
import { GET_DEFAULTS, describeResponseError, resolverFromResolvConf, validateGetArgs } from '../../src/cli/get.js';
import type { GetArgs } from '../../src/cli/get.js';
import { Timeline, formatEvent } from '../../src/cli/timeline.js';
import { CliError } from '../../src/cli/up.js';
import { ResponseParser } from '../../src/http/response-parser.js';
import { parseIpv4 } from '../../src/ip/addr.js';
import { MemoryLink } from '../../src/link/memory.js';
import { VirtualClock } from '../../src/runtime/clock.js';
import { seededRandom } from '../../src/runtime/random.js';
import { Stack } from '../../src/stack.js';

const base: GetArgs = { url: '', dev: GET_DEFAULTS.dev, host: GET_DEFAULTS.host, addr: GET_DEFAULTS.addr, json: false, timeout: '30' };

function refusal(args: Partial<GetArgs>): string {
  try {
    validateGetArgs({ ...base, ...args });
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    return (e as Error).message;
  }
  throw new Error('expected a CliError');
}

describe('netstack get: options', () => {
  it('takes a URL apart: host, literal, port, target, Host header', () => {
    const c = validateGetArgs({ ...base, url: 'http://Web.Test:8000/file?x=1' });
    expect([c.hostname, c.literal, c.port, c.target, c.hostHeader]).toEqual(['web.test', undefined, 8000, '/file?x=1', 'web.test:8000']);
    const d = validateGetArgs({ ...base, url: 'http://10.78.0.1' });
    expect([d.literal, d.port, d.target, d.hostHeader]).toEqual(['10.78.0.1', 80, '/', '10.78.0.1']);
  });

  it.each([
    [{ url: 'https://web.test/' }, 'https:// is not supported: the stack has no TLS yet, so fetch an http:// URL'],
    [{ url: 'not a url' }, '"not a url" is not a URL: write it like http://web.test:8000/file'],
    [{ url: 'ftp://10.78.0.1/' }, 'only http:// URLs can be fetched (got ftp://)'],
    [{ url: 'http://[::1]/' }, 'IPv6 addresses are not supported: the stack speaks IPv4 only'],
    [{ url: 'http://u:p@web.test/' }, 'user names and passwords in the URL are not supported'],
    [{ url: 'http://web.test/', resolver: 'dns.example' }, '--resolver must be an IPv4 address (got "dns.example")'],
    [{ url: 'http://web.test/', timeout: 'soon' }, '--timeout must be a number of seconds from 0 to 3600 (got "soon")'],
    [{ url: 'http://web.test/', addr: '10.79.0.2' }, '--addr 10.79.0.2 must be another address inside the --host subnet 10.78.0.1/24'],
    [{ url: 'http://web.test/', dev: 'a/b' }, '--dev must be 1 to 15 characters without spaces, "/" or ":" (got "a/b")'],
  ])('refuses %j in one sentence', (args, sentence) => {
    expect(refusal(args)).toBe(sentence);
  });

  it('picks the first nameserver that is not loopback', () => {
    expect(resolverFromResolvConf('# x\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver 10.0.0.2\n')).toBe('10.0.0.1');
    expect(resolverFromResolvConf('nameserver ::1\nnameserver 127.0.0.1\n')).toBeUndefined();
    expect(resolverFromResolvConf('')).toBeUndefined();
  });
});

describe('netstack get: a bad response is one sentence', () => {
  /** What the parser says about `text` (the server then closes), as netstack get words it. */
  function sentence(text: string): string | undefined {
    const p = new ResponseParser('GET');
    p.feed(Buffer.from(text, 'latin1'));
    p.end();
    for (let ev = p.next(), guard = 0; ev && guard < 1000; ev = p.next(), guard++) {
      if (ev.type === 'error') return describeResponseError(ev.reason, p.bodyBytes);
    }
    return undefined;
  }

  it.each([
    ['SSH-2.0-OpenSSH\r\n\r\n', 'the first line is not an HTTP/1.x status line'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 'the response has differing Content-Length values'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort', 'the server closed the connection after 5 bytes of the body'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'a chunk size is not a hexadecimal number'],
    ['HTTP/1.1 200 OK\r\nContent-Le', 'the server closed the connection before the response head was complete'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 'the response has both Content-Length and Transfer-Encoding'],
    ['HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\n\r\n', 'a header field is folded over several lines (obs-fold)'],
  ])('%j', (text, expected) => {
    expect(sentence(text)).toBe(expected);
  });

  it('a reason the parser may add later still reads as a sentence', () => {
    expect(describeResponseError('some-new-rule', 0)).toBe('it breaks an HTTP/1.1 rule (some-new-rule)');
  });
});

describe('timeline', () => {
  it('lists the handshake, the close and the transitions, not every data segment', async () => {
    const clock = new VirtualClock(0);
    const [la, lb] = MemoryLink.pair(clock, 1500);
    const tl = new Timeline(() => clock.now());
    const a = new Stack({ link: tl.tap(la), addr: parseIpv4('10.0.0.1')!, clock, random: seededRandom(31) });
    const b = new Stack({ link: lb, addr: parseIpv4('10.0.0.2')!, clock, random: seededRandom(32) });
    a.onTransition((e) => tl.onTransition(e));
    b.createServer((s) => s.on('data', () => s.end(Buffer.alloc(20_000, 1)))).listen(80);
    const lines: string[] = [];
    // Without the number, time and sequence numbers, which vary.
    tl.onEvent((e) => lines.push(formatEvent(e).replace(/^\s*\d+\s+[\d.]+ ms\s+/, '').replace(/(seq|ack)=\d+/g, '$1').replace(/\s+/g, ' ')));
    tl.follow(50000);
    const sock = a.connect({ host: '10.0.0.2', port: 80, localPort: 50000, allowHalfOpen: true });
    sock.on('connect', () => sock.write('hi'));
    let got = 0;
    sock.on('data', (d: Buffer) => (got += d.length));
    sock.on('end', () => sock.end());
    await clock.run(() => sock.state !== 'CLOSED', 10_000);
    expect(got).toBe(20_000);
    // The server closes first here, so we pass CLOSE-WAIT and LAST-ACK instead of TIME-WAIT.
    expect(lines).toEqual([
      'TCP → SYN seq CLOSED → SYN-SENT',
      'TCP ← SYN-ACK seq ack SYN-SENT → ESTABLISHED',
      // The handshake's ACK carries the request here: written before the stack flushed.
      'TCP → ACK seq ack len=2',
      // 20 000 bytes in segments of 1448 (MSS 1460 less the timestamps option): the last is 1176.
      'TCP ← FIN-ACK seq ack len=1176 ESTABLISHED → CLOSE-WAIT',
      'TCP → ACK ack',
      'TCP → FIN-ACK seq ack CLOSE-WAIT → LAST-ACK',
      'TCP ← ACK ack LAST-ACK → CLOSED',
    ]);
    expect(tl.dataSegmentsIn).toBe(14);
    expect(tl.events.map((e) => e.n)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });
});
