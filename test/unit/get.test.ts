/**
 * The parts of `netstack get` that need no device: URL and option checks (one sentence
 * each), the resolver picked from resolv.conf, the HTTP response parser fed in every
 * split, and the timeline's choice of lines from a scripted connection.
 */
import { describe, expect, it } from 'vitest';
import { GET_DEFAULTS, resolverFromResolvConf, validateGetArgs } from '../../src/cli/get.js';
import type { GetArgs } from '../../src/cli/get.js';
import { Timeline, formatEvent } from '../../src/cli/timeline.js';
import { CliError } from '../../src/cli/up.js';
import type { ResponseEvent } from '../../src/http/response.js';
import { ResponseParser } from '../../src/http/response.js';
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

describe('HTTP response parser', () => {
  const enc = (s: string) => new TextEncoder().encode(s);

  /** Feed `text` split at every position (two pieces), and as single bytes; all must agree. */
  function parseAllSplits(text: string, method?: string): string[] {
    const summarise = (events: ResponseEvent[]) => {
      const out: string[] = [];
      let body = '';
      for (const e of events) {
        if (e.kind === 'body') body += Buffer.from(e.data).toString('latin1');
        else if (e.kind === 'head') out.push(`head ${e.head.status} ${e.head.reason} ${e.head.headers.length}`);
        else if (e.kind === 'end') out.push(`body ${JSON.stringify(body)}`, `end ${e.bodyBytes}`);
        else out.push(`error ${e.message}`);
      }
      return out;
    };
    const bytes = enc(text);
    const whole = (() => {
      const p = new ResponseParser(method ? { method } : {});
      return summarise([...p.push(bytes), ...p.finish()]);
    })();
    for (let cut = 0; cut <= bytes.length; cut++) {
      const p = new ResponseParser(method ? { method } : {});
      expect(summarise([...p.push(bytes.subarray(0, cut)), ...p.push(bytes.subarray(cut)), ...p.finish()]), `split at ${cut}`).toEqual(whole);
    }
    const p = new ResponseParser(method ? { method } : {});
    const ev: ResponseEvent[] = [];
    for (const b of bytes) ev.push(...p.push(Uint8Array.of(b)));
    expect(summarise([...ev, ...p.finish()])).toEqual(whole);
    return whole;
  }

  it('reads a Content-Length body', () => {
    expect(parseAllSplits('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello')).toEqual(['head 200 OK 2', 'body "hello"', 'end 5']);
  });

  it('reads chunked bodies with extensions and trailers, skipping 1xx responses', () => {
    const text = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n';
    expect(parseAllSplits(text)).toEqual(['head 200 OK 1', 'body "hello world"', 'end 11']);
  });

  it('reads until close without a length, and no body for HEAD, 204 and 304', () => {
    expect(parseAllSplits('HTTP/1.0 200 OK\r\n\r\nall of it')).toEqual(['head 200 OK 0', 'body "all of it"', 'end 9']);
    expect(parseAllSplits('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n', 'HEAD')).toEqual(['head 200 OK 1', 'body ""', 'end 0']);
    expect(parseAllSplits('HTTP/1.1 204 No Content\r\n\r\n')).toEqual(['head 204 No Content 0', 'body ""', 'end 0']);
  });

  it('reports bad responses in one sentence and never throws', () => {
    expect(parseAllSplits('SSH-2.0-OpenSSH\r\n\r\n')).toEqual(['error not an HTTP response: "SSH-2.0-OpenSSH"']);
    expect(parseAllSplits('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n')).toEqual(['error bad Content-Length "5, 6"']);
    expect(parseAllSplits('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort')).toEqual(['head 200 OK 1', 'error the server closed the connection after 5 bytes of the body']);
    expect(parseAllSplits('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')).toEqual(['head 200 OK 1', 'error bad chunk size line "zz"']);
    const p = new ResponseParser();
    const huge = p.push(new Uint8Array(70 * 1024).fill(0x41));
    expect(huge).toEqual([{ kind: 'error', message: 'the response head is larger than 65536 bytes' }]);
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
