import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, RequestParser, splitTarget, type ParserLimits } from '../../src/http/parser.js';
import { seededRandom } from '../../src/runtime/random.js';

/**
 * Events normalised for comparison: adjacent body chunks merged (how a body is cut into
 * events depends on how the input was cut; the bytes must not).
 */
type Normal =
  | { type: 'head'; method: string; target: string; version: string; fields: string[][]; contentLength: number | null; chunked: boolean; keepAlive: boolean }
  | { type: 'body'; data: string }
  | { type: 'end'; trailers: string[][] }
  | { type: 'error'; status: number; reason: string };

function run(chunks: Uint8Array[], limits: Partial<ParserLimits> = {}): Normal[] {
  const p = new RequestParser(limits);
  const out: Normal[] = [];
  const drain = () => {
    for (let ev = p.next(); ev; ev = p.next()) {
      if (ev.type === 'head') {
        const h = ev.head;
        out.push({
          type: 'head',
          method: h.method,
          target: h.target,
          version: h.version,
          fields: h.fields.map((f) => [...f]),
          contentLength: h.contentLength,
          chunked: h.chunked,
          keepAlive: h.keepAlive,
        });
      } else if (ev.type === 'body') {
        expect(ev.data.length).toBeGreaterThan(0);
        const last = out[out.length - 1];
        const text = Buffer.from(ev.data).toString('latin1');
        if (last?.type === 'body') last.data += text;
        else out.push({ type: 'body', data: text });
      } else if (ev.type === 'end') {
        out.push({ type: 'end', trailers: ev.trailers.map((f) => [...f]) });
      } else {
        out.push({ type: 'error', status: ev.status, reason: ev.reason });
      }
    }
  };
  for (const c of chunks) {
    p.feed(c);
    drain();
  }
  return out;
}

const bytes = (s: string) => Buffer.from(s, 'latin1');
const whole = (s: string, limits?: Partial<ParserLimits>) => run([bytes(s)], limits);
/** The first error of a parse, or undefined. */
const errorOf = (s: string, limits?: Partial<ParserLimits>) => {
  const ev = whole(s, limits).find((e) => e.type === 'error');
  return ev?.type === 'error' ? { status: ev.status, reason: ev.reason } : undefined;
};

const GET = 'GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent:  curl/8.5.0 \r\nAccept: */*\r\n\r\n';
const POST = 'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world';
const CHUNKED =
  'POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n' +
  '5;name=value\r\nhello\r\n' +
  '1\r\n \r\n' +
  'A ; a="quoted;x"\r\n0123456789\r\n' +
  '0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n';
const PIPELINED =
  'GET /a HTTP/1.1\r\nHost: h\r\n\r\n' +
  'POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz' +
  'GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n';

describe('RequestParser: well-formed requests', () => {
  it('parses a GET: method, target, version, fields lower-cased and trimmed', () => {
    expect(whole(GET)).toEqual([
      {
        type: 'head',
        method: 'GET',
        target: '/index.html?x=1',
        version: '1.1',
        fields: [
          ['host', 'example.com'],
          ['user-agent', 'curl/8.5.0'],
          ['accept', '*/*'],
        ],
        contentLength: null,
        chunked: false,
        keepAlive: true,
      },
      { type: 'end', trailers: [] },
    ]);
  });

  it('parses a Content-Length body', () => {
    const ev = whole(POST);
    expect(ev.map((e) => e.type)).toEqual(['head', 'body', 'end']);
    expect(ev[0]).toMatchObject({ contentLength: 11, chunked: false });
    expect(ev[1]).toEqual({ type: 'body', data: 'hello world' });
  });

  it('parses a chunked body, ignores chunk extensions and exposes trailers', () => {
    const ev = whole(CHUNKED);
    expect(ev.map((e) => e.type)).toEqual(['head', 'body', 'end']);
    expect(ev[0]).toMatchObject({ chunked: true, contentLength: null });
    expect(ev[1]).toEqual({ type: 'body', data: 'hello 0123456789' });
    expect(ev[2]).toEqual({ type: 'end', trailers: [['x-checksum', 'abc'], ['x-other', '1']] });
  });

  it('parses three pipelined requests in one chunk, in order', () => {
    const ev = whole(PIPELINED);
    expect(ev.map((e) => e.type)).toEqual(['head', 'end', 'head', 'body', 'end', 'head', 'end']);
    expect(ev.filter((e) => e.type === 'head').map((e) => (e.type === 'head' ? e.target : ''))).toEqual(['/a', '/b', '/c']);
    expect(ev[3]).toEqual({ type: 'body', data: 'xyz' });
    expect(ev[5]).toMatchObject({ version: '1.0', keepAlive: true });
  });

  it('stops between messages: next() returns null until more input arrives', () => {
    const p = new RequestParser();
    p.feed(bytes('GET / HTTP/1.1\r\nHost: a\r\n'));
    expect(p.next()).toBeNull();
    expect(p.idle).toBe(false);
    p.feed(bytes('\r\n'));
    expect(p.next()?.type).toBe('head');
    expect(p.next()?.type).toBe('end');
    expect(p.next()).toBeNull();
    expect(p.idle).toBe(true);
    expect(p.bufferedBytes).toBe(0);
  });

  it('keep-alive follows RFC 9112 §9.3', () => {
    const ka = (s: string) => (whole(s)[0] as { keepAlive: boolean }).keepAlive;
    expect(ka('GET / HTTP/1.1\r\nHost: a\r\n\r\n')).toBe(true);
    expect(ka('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).toBe(false);
    expect(ka('GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n')).toBe(false);
    expect(ka('GET / HTTP/1.0\r\n\r\n')).toBe(false);
    expect(ka('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n')).toBe(true);
  });

  it('accepts identical repeated Content-Length values (RFC 9110 §8.6)', () => {
    const ev = whole('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nContent-Length: 003\r\n\r\nabc');
    expect(ev[0]).toMatchObject({ type: 'head', contentLength: 3 });
    expect(ev[1]).toEqual({ type: 'body', data: 'abc' });
  });

  it('ignores one leading empty line before a request-line (RFC 9112 §2.2)', () => {
    expect(whole('\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n').map((e) => e.type)).toEqual(['head', 'end']);
  });

  it('joins repeated fields in headers, keeps each in fields', () => {
    const p = new RequestParser();
    p.feed(bytes('GET / HTTP/1.1\r\nHost: a\r\nAccept: a\r\naccept: b\r\n\r\n'));
    const ev = p.next();
    expect(ev?.type).toBe('head');
    if (ev?.type !== 'head') return;
    expect(ev.head.headers.get('accept')).toBe('a, b');
    expect(ev.head.fields.filter(([n]) => n === 'accept')).toHaveLength(2);
  });

  it('keeps obs-text bytes in values (latin1 round trip)', () => {
    const ev = whole('GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n');
    expect(ev[0]).toMatchObject({ fields: [['host', 'a'], ['x', 'caf\xe9']] });
  });

  it('hands out body bytes as views of the fed chunk, not copies', () => {
    const p = new RequestParser();
    const chunk = bytes(POST);
    p.feed(chunk);
    p.next();
    const body = p.next();
    expect(body?.type).toBe('body');
    if (body?.type !== 'body') return;
    expect(body.data.buffer).toBe(chunk.buffer);
    expect(body.data.byteOffset).toBe(chunk.byteOffset + POST.indexOf('hello'));
  });

  it('reports bodyRemaining for Content-Length, undefined for chunked', () => {
    const p = new RequestParser();
    p.feed(bytes('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n123'));
    expect(p.next()?.type).toBe('head');
    expect(p.bodyRemaining).toBe(10);
    p.next();
    expect(p.bodyRemaining).toBe(7);
    const q = new RequestParser();
    q.feed(bytes('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'));
    q.next();
    expect(q.bodyRemaining).toBeUndefined();
  });
});

describe('RequestParser: any split of the input parses identically', () => {
  const samples = { GET, POST, CHUNKED, PIPELINED };
  for (const [name, text] of Object.entries(samples)) {
    const input = bytes(text);
    // Parsed inside the tests, not while they are collected: a mutation run must see which test
    // covers which line of the parser.
    let parsed: Normal[] | undefined;
    const reference = () => (parsed ??= run([input]));

    it(`${name}: every split point into two chunks`, () => {
      const expected = reference();
      expect(expected.some((e) => e.type === 'error')).toBe(false);
      for (let i = 0; i <= input.length; i++) {
        expect(run([input.subarray(0, i), input.subarray(i)]), `split at ${i}`).toEqual(expected);
      }
    });

    it(`${name}: every pair of split points into three chunks`, () => {
      const expected = reference();
      for (let i = 0; i <= input.length; i++) {
        for (let j = i; j <= input.length; j++) {
          const got = run([input.subarray(0, i), input.subarray(i, j), input.subarray(j)]);
          if (JSON.stringify(got) !== JSON.stringify(expected)) {
            expect(got, `split at ${i}, ${j}`).toEqual(expected);
          }
        }
      }
    });

    it(`${name}: one byte at a time`, () => {
      const expected = reference();
      const chunks = Array.from(input, (_, i) => input.subarray(i, i + 1));
      expect(run(chunks)).toEqual(expected);
    });

    it(`${name}: each chunk copied into its own buffer (no aliasing assumptions)`, () => {
      const expected = reference();
      const rnd = seededRandom(0x5eed + text.length);
      for (let trial = 0; trial < 200; trial++) {
        const chunks: Uint8Array[] = [];
        for (let at = 0; at < input.length; ) {
          const n = 1 + Math.floor(rnd() * 20);
          chunks.push(Uint8Array.from(input.subarray(at, at + n)));
          at += n;
        }
        expect(run(chunks)).toEqual(expected);
      }
    });
  }
});

describe('RequestParser: malformed requests get their status', () => {
  const H = 'Host: a\r\n';
  const cases: Array<[string, string, number, string]> = [
    ['garbage request line', 'HELLO\r\n\r\n', 400, 'bad-request-line'],
    ['two spaces in request line', `GET  / HTTP/1.1\r\n${H}\r\n`, 400, 'bad-request-line'],
    ['trailing space in request line', `GET / HTTP/1.1 \r\n${H}\r\n`, 400, 'bad-request-line'],
    ['tab instead of space', `GET\t/ HTTP/1.1\r\n${H}\r\n`, 400, 'bad-request-line'],
    ['bad method char', `GE(T / HTTP/1.1\r\n${H}\r\n`, 400, 'bad-method'],
    ['control in target', `GET /\x01 HTTP/1.1\r\n${H}\r\n`, 400, 'bad-target'],
    ['non-ASCII in target', `GET /caf\xe9 HTTP/1.1\r\n${H}\r\n`, 400, 'bad-target'],
    ['lower-case version', `GET / http/1.1\r\n${H}\r\n`, 400, 'bad-version'],
    ['HTTP/2.0', `GET / HTTP/2.0\r\n${H}\r\n`, 505, 'unsupported-version'],
    ['HTTP/0.9', `GET / HTTP/0.9\r\n${H}\r\n`, 505, 'unsupported-version'],
    ['HTTP/1.2', `GET / HTTP/1.2\r\n${H}\r\n`, 505, 'unsupported-version'],
    ['bare LF ends the request line', `GET / HTTP/1.1\n${H}\r\n`, 400, 'bare-lf'],
    ['bare LF ends a field', `GET / HTTP/1.1\r\nHost: a\n\r\n`, 400, 'bare-lf'],
    ['bare CR in request line', `GET /a\rb HTTP/1.1\r\n${H}\r\n`, 400, 'bare-cr'],
    ['bare CR in a field value', `GET / HTTP/1.1\r\n${H}X: a\rb\r\n\r\n`, 400, 'bare-cr'],
    ['CR CR LF', `GET / HTTP/1.1\r\n${H}X: a\r\r\n\r\n`, 400, 'bare-cr'],
    ['obs-fold with SP', `GET / HTTP/1.1\r\n${H}X: a\r\n b\r\n\r\n`, 400, 'obs-fold'],
    ['obs-fold with HTAB', `GET / HTTP/1.1\r\n${H}X: a\r\n\tb\r\n\r\n`, 400, 'obs-fold'],
    ['whitespace before colon', `GET / HTTP/1.1\r\n${H}Content-Length : 0\r\n\r\n`, 400, 'space-before-colon'],
    ['tab before colon', `GET / HTTP/1.1\r\n${H}X\t: 0\r\n\r\n`, 400, 'space-before-colon'],
    ['no colon', `GET / HTTP/1.1\r\n${H}Nonsense\r\n\r\n`, 400, 'missing-colon'],
    ['empty field name', `GET / HTTP/1.1\r\n${H}: v\r\n\r\n`, 400, 'empty-field-name'],
    ['bad field name', `GET / HTTP/1.1\r\n${H}X(y): v\r\n\r\n`, 400, 'bad-field-name'],
    ['NUL in field value', `GET / HTTP/1.1\r\n${H}X: a\x00b\r\n\r\n`, 400, 'bad-field-value'],
    ['DEL in field value', `GET / HTTP/1.1\r\n${H}X: a\x7fb\r\n\r\n`, 400, 'bad-field-value'],
    ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', 400, 'missing-host'],
    ['two Host fields', `GET / HTTP/1.1\r\n${H}${H}\r\n`, 400, 'duplicate-host'],
    ['CL and TE', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'content-length-and-transfer-encoding'],
    ['TE and CL', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`, 400, 'content-length-and-transfer-encoding'],
    ['conflicting CL fields', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello`, 400, 'conflicting-content-length'],
    ['conflicting CL list', `POST / HTTP/1.1\r\n${H}Content-Length: 5, 6\r\n\r\nhello`, 400, 'conflicting-content-length'],
    ['negative CL', `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, 400, 'bad-content-length'],
    ['signed CL', `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, 400, 'bad-content-length'],
    ['hex CL', `POST / HTTP/1.1\r\n${H}Content-Length: 0x5\r\n\r\nhello`, 400, 'bad-content-length'],
    ['empty CL', `POST / HTTP/1.1\r\n${H}Content-Length:\r\n\r\n`, 400, 'bad-content-length'],
    ['CL with empty list element', `POST / HTTP/1.1\r\n${H}Content-Length: 5,\r\n\r\nhello`, 400, 'bad-content-length'],
    ['CL with inner space', `POST / HTTP/1.1\r\n${H}Content-Length: 1 2\r\n\r\n`, 400, 'bad-content-length'],
    ['chunked not last', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n`, 400, 'chunked-not-last'],
    ['only gzip', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n`, 400, 'chunked-not-last'],
    ['chunked twice', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n`, 400, 'chunked-twice'],
    ['empty TE', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: \r\n\r\n`, 400, 'bad-transfer-encoding'],
    ['TE in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'transfer-encoding-in-http10'],
    ['unknown coding before chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n`, 501, 'unsupported-transfer-coding'],
    ['TE with a misspelt chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked_\r\n\r\n`, 400, 'chunked-not-last'],
    ['bad chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nxyz\r\n`, 400, 'bad-chunk-size'],
    ['negative chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-1\r\n`, 400, 'bad-chunk-size'],
    ['junk after chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n`, 400, 'bad-chunk-extension'],
    ['chunk size with 0x prefix', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n`, 400, 'bad-chunk-extension'],
    ['chunk size overflow', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1${'0'.repeat(16)}\r\n`, 400, 'chunk-size-overflow'],
    ['chunk size overflow (2^64+1)', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n10000000000000001\r\na\r\n0\r\n\r\n`, 400, 'chunk-size-overflow'],
    ['chunk data longer than size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n`, 400, 'bad-chunk-terminator'],
    ['chunk data ends with bare LF', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n`, 400, 'bad-chunk-terminator'],
    ['chunk size line with bare LF', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n`, 400, 'bare-lf'],
    ['bare LF inside a chunk extension', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n`, 400, 'bare-lf'],
    ['control char in chunk extension', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;a\x01\r\nhello\r\n0\r\n\r\n`, 400, 'bad-chunk-extension'],
    ['obs-fold in trailer', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n`, 400, 'obs-fold'],
    ['too many empty lines first', `${'\r\n'.repeat(9)}GET / HTTP/1.1\r\n${H}\r\n`, 400, 'too-many-empty-lines'],
  ];
  for (const [name, input, status, reason] of cases) {
    it(`${name} → ${status}`, () => {
      expect(errorOf(input)).toEqual({ status, reason });
      // Same verdict whatever the chunking.
      const b = bytes(input);
      const oneByOne = run(Array.from(b, (_, i) => b.subarray(i, i + 1))).find((e) => e.type === 'error');
      expect(oneByOne).toEqual({ type: 'error', status, reason });
    });
  }

  it('stays dead after an error: further input is ignored', () => {
    const p = new RequestParser();
    p.feed(bytes('GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n'));
    expect(p.next()).toMatchObject({ type: 'error', status: 400 });
    expect(p.failed).toBe(true);
    p.feed(bytes('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
    expect(p.next()).toBeNull();
    expect(p.bufferedBytes).toBe(0);
  });

  it('answers a pipelined good request before the bad one that follows it', () => {
    const ev = whole('GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /bad HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n');
    expect(ev.map((e) => e.type)).toEqual(['head', 'end', 'error']);
  });
});

describe('RequestParser: limits', () => {
  it('414 for a request-target over the limit, 200-ish right at it', () => {
    const target = '/' + 'a'.repeat(DEFAULT_LIMITS.maxTargetLength - 1);
    expect(whole(`GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`)[0]).toMatchObject({ type: 'head', target });
    expect(errorOf(`GET ${target}a HTTP/1.1\r\nHost: a\r\n\r\n`)).toEqual({ status: 414, reason: 'target-too-long' });
  });

  it('414 as soon as an endless request line exceeds the limit (memory stays bounded)', () => {
    const p = new RequestParser({ maxTargetLength: 100 });
    p.feed(bytes('GET /'));
    let ev = null;
    for (let i = 0; i < 1000 && !ev; i++) {
      p.feed(bytes('a'.repeat(10)));
      ev = p.next();
      expect(p.bufferedBytes).toBeLessThan(200);
    }
    expect(ev).toMatchObject({ type: 'error', status: 414 });
  });

  it('431 for a header section over maxHeaderBytes, even without a line end', () => {
    const limits = { maxHeaderBytes: 1024 };
    const big = 'X: ' + 'v'.repeat(1100) + '\r\n';
    expect(errorOf(`GET / HTTP/1.1\r\nHost: a\r\n${big}\r\n`, limits)).toEqual({ status: 431, reason: 'header-section-too-large' });
    const many = 'X: ' + 'v'.repeat(100) + '\r\n';
    expect(errorOf(`GET / HTTP/1.1\r\nHost: a\r\n${many.repeat(10)}\r\n`, limits)).toEqual({ status: 431, reason: 'header-section-too-large' });
    const p = new RequestParser(limits);
    p.feed(bytes('GET / HTTP/1.1\r\nX: '));
    let ev = null;
    for (let i = 0; i < 1000 && !ev; i++) {
      p.feed(bytes('v'.repeat(64)));
      ev = p.next();
      expect(p.bufferedBytes).toBeLessThan(1200);
    }
    expect(ev).toMatchObject({ type: 'error', status: 431 });
  });

  it('the header-section limit is exact, however the bytes are cut: maxHeaderBytes parses, one byte more is 431', () => {
    const maxHeaderBytes = 64;
    // The field lines and the empty line that ends them count; the request line does not.
    const section = (n: number) => `Host: a\r\nX: ${'v'.repeat(n - 'Host: a\r\nX: \r\n\r\n'.length)}\r\n\r\n`;
    const atLimit = `GET / HTTP/1.1\r\n${section(maxHeaderBytes)}`;
    const over = `GET / HTTP/1.1\r\n${section(maxHeaderBytes + 1)}`;
    for (let cut = 0; cut <= over.length; cut++) {
      const split = (s: string) => [bytes(s.slice(0, cut)), bytes(s.slice(cut))];
      expect(run(split(atLimit), { maxHeaderBytes }).map((e) => e.type), `cut at ${cut}`).toEqual(['head', 'end']);
      expect(run(split(over), { maxHeaderBytes }).find((e) => e.type === 'error'), `cut at ${cut}`).toEqual({
        type: 'error',
        status: 431,
        reason: 'header-section-too-large',
      });
    }
  });

  it('a bare CR inside a line or a LF without CR is refused wherever the line is cut', () => {
    for (const [text, reason] of [
      ['GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n', 'bare-cr'],
      ['GET / HTTP/1.1\r\nHost: a\n\r\n', 'bare-lf'],
    ] as const) {
      for (let cut = 0; cut <= text.length; cut++) {
        const events = run([bytes(text.slice(0, cut)), bytes(text.slice(cut))]);
        expect(events.find((e) => e.type === 'error'), `cut at ${cut}`).toEqual({ type: 'error', status: 400, reason });
      }
    }
  });

  it('431 for more than maxHeaderCount fields; exactly the count is fine', () => {
    const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-${i}: ${i}\r\n`).join('');
    expect(whole(`GET / HTTP/1.1\r\nHost: a\r\n${fields(99)}\r\n`)[0]?.type).toBe('head');
    expect(errorOf(`GET / HTTP/1.1\r\nHost: a\r\n${fields(100)}\r\n`)).toEqual({ status: 431, reason: 'too-many-fields' });
  });

  it('413 when Content-Length exceeds the body limit, before any body byte is accepted', () => {
    expect(errorOf('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n', { maxBodyBytes: 10 })).toEqual({ status: 413, reason: 'body-too-large' });
    expect(errorOf(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${'9'.repeat(30)}\r\n\r\n`)).toEqual({ status: 413, reason: 'body-too-large' });
    expect(whole('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789', { maxBodyBytes: 10 }).map((e) => e.type)).toEqual(['head', 'body', 'end']);
  });

  it('413 when chunks add up past the limit', () => {
    const body = '5\r\nhello\r\n5\r\nworld\r\n1\r\n!\r\n0\r\n\r\n';
    const ev = whole(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${body}`, { maxBodyBytes: 10 });
    expect(ev.map((e) => e.type)).toEqual(['head', 'body', 'error']);
    expect(ev[2]).toEqual({ type: 'error', status: 413, reason: 'body-too-large' });
  });

  it('setBodyLimit changes the limit for this request only', () => {
    const p = new RequestParser({ maxBodyBytes: 100 });
    p.feed(bytes('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\n' + 'x'.repeat(50)));
    p.feed(bytes('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\n' + 'x'.repeat(50)));
    expect(p.next()?.type).toBe('head');
    p.setBodyLimit(1000);
    expect(p.next()?.type).toBe('body');
    expect(p.next()?.type).toBe('end');
    expect(p.next()?.type).toBe('head');
    p.setBodyLimit(10);
    expect(p.next()).toEqual({ type: 'error', status: 413, reason: 'body-too-large' });
    expect(() => p.setBodyLimit(5)).toThrow();
  });

  it('400 for a chunk line longer than maxChunkLineBytes', () => {
    const ext = ';' + 'e'.repeat(5000);
    expect(errorOf(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5${ext}\r\nhello\r\n0\r\n\r\n`)).toEqual({
      status: 400,
      reason: 'chunk-line-too-long',
    });
  });

  it('431 for a trailer section over the limit', () => {
    const trailer = 'T: ' + 't'.repeat(2000) + '\r\n';
    expect(errorOf(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${trailer}\r\n`, { maxHeaderBytes: 1024 })).toEqual({
      status: 431,
      reason: 'trailer-section-too-large',
    });
  });
});

describe('RequestParser: seeded fuzz', () => {
  const seeds = [GET, POST, CHUNKED, PIPELINED, 'POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nok'];
  const fragments = [
    '\r', '\n', '\r\n', ' ', '\t', ':', ',', ';', '\x00', '\x7f', '\xff', '0', 'f', '\r\n\r\n',
    'Transfer-Encoding: chunked\r\n', 'transfer-encoding: gzip, chunked\r\n', 'Content-Length: 5\r\n',
    'Content-Length: 7\r\n', 'content-length: 5, 5\r\n', 'Content-Length : 1\r\n', ' folded\r\n', '\r\n\tfold',
    'Host: x\r\n', 'HTTP/1.0', 'HTTP/1.1', '0\r\n\r\n', 'ffffffffffffffffff\r\n', '5\r\nhello\r\n',
  ];

  const fieldLines = [
    'Transfer-Encoding: chunked\r\n', 'Transfer-Encoding: identity, chunked\r\n', 'Content-Length: 5\r\n',
    'Content-Length: 11\r\n', 'Content-Length: 011\r\n', 'Content-Length: 5, 11\r\n', 'Content-Length : 11\r\n',
    ' folded\r\n', '\tfolded: x\r\n', 'X: a\rb\r\n', 'X: a\nb\r\n', 'Host: y\r\n', 'Connection: close\r\n',
  ];

  function mutate(rnd: () => number, input: string): string {
    let s = input;
    const n = 1 + Math.floor(rnd() * 4);
    for (let k = 0; k < n; k++) {
      const at = Math.floor(rnd() * (s.length + 1));
      const op = rnd();
      if (op < 0.15) s = s.slice(0, at) + fragments[Math.floor(rnd() * fragments.length)]! + s.slice(at);
      else if (op < 0.3) {
        // Insert a whole field line right after a line end, where it forms a field.
        const ends = [...s.matchAll(/\r\n/g)].map((m) => m.index + 2);
        const after = ends[Math.floor(rnd() * ends.length)] ?? 0;
        s = s.slice(0, after) + fieldLines[Math.floor(rnd() * fieldLines.length)]! + s.slice(after);
      }
      else if (op < 0.5) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rnd() * 4));
      else if (op < 0.75) s = s.slice(0, at) + String.fromCharCode(Math.floor(rnd() * 256)) + s.slice(at + 1);
      else {
        // Duplicate a slice somewhere else: repeated fields, doubled lines.
        const from = Math.floor(rnd() * s.length);
        const piece = s.slice(from, from + Math.floor(rnd() * 40));
        s = s.slice(0, at) + piece + s.slice(at);
      }
    }
    return s;
  }

  /** Independent oracle over the raw bytes of an accepted head. */
  function checkAcceptedHead(raw: string): void {
    const lines = raw.split('\r\n');
    for (const line of lines) {
      expect(line.includes('\r'), 'bare CR accepted').toBe(false);
      expect(line.includes('\n'), 'bare LF accepted').toBe(false);
    }
    const fieldLines = lines.slice(1, -2);
    // Skip leading empty lines before the request line.
    for (const line of fieldLines) {
      expect(/^[ \t]/.test(line), `obs-fold accepted: ${JSON.stringify(line)}`).toBe(false);
      expect(/^[^:]*[ \t]:/.test(line), 'space before colon accepted').toBe(false);
    }
    const names = fieldLines.map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
    const hasCl = names.includes('content-length');
    const hasTe = names.includes('transfer-encoding');
    expect(hasCl && hasTe, 'CL + TE accepted').toBe(false);
    const cls = fieldLines
      .filter((_, i) => names[i] === 'content-length')
      .flatMap((l) => l.slice(l.indexOf(':') + 1).split(','))
      .map((v) => v.trim());
    for (const v of cls) expect(v, 'malformed Content-Length accepted').toMatch(/^\d+$/);
    expect(new Set(cls.map((v) => BigInt(v))).size, 'conflicting Content-Length accepted').toBeLessThanOrEqual(1);
  }

  it('thousands of mutated requests: never throws, never accepts a smuggling shape', () => {
    const rnd = seededRandom(20240607);
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 5000; i++) {
      const text = mutate(rnd, seeds[i % seeds.length]!);
      const input = bytes(text);
      // Random chunking too.
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < input.length; ) {
        const n = 1 + Math.floor(rnd() * 64);
        chunks.push(input.subarray(at, at + n));
        at += n;
      }
      let events: Normal[] = [];
      expect(() => {
        events = run(chunks);
      }).not.toThrow();
      expect(events).toEqual(run([input]));
      if (events.some((e) => e.type === 'error')) rejected++;
      const firstHead = events.findIndex((e) => e.type === 'head');
      if (firstHead === 0) {
        accepted++;
        let start = 0;
        while (text.startsWith('\r\n', start)) start += 2;
        const end = text.indexOf('\r\n\r\n', start);
        checkAcceptedHead(text.slice(start, end + 4));
      }
      // Every head, wherever it is, obeys the framing rules.
      for (const e of events) {
        if (e.type !== 'head') continue;
        const names = e.fields.map(([n]) => n);
        expect(names.includes('content-length') && names.includes('transfer-encoding')).toBe(false);
        if (e.chunked) expect(e.contentLength).toBeNull();
      }
    }
    // The fuzz must exercise both paths to mean anything.
    expect(accepted).toBeGreaterThan(500);
    expect(rejected).toBeGreaterThan(500);
  });

  it('random bytes never throw', () => {
    const rnd = seededRandom(7);
    for (let i = 0; i < 2000; i++) {
      const input = Buffer.alloc(1 + Math.floor(rnd() * 300));
      for (let j = 0; j < input.length; j++) input[j] = Math.floor(rnd() * 256);
      expect(() => run([bytes('GET / HTTP/1.1\r\n'), input])).not.toThrow();
    }
  });
});

describe('splitTarget', () => {
  it('splits origin-form, reduces absolute-form, keeps asterisk-form', () => {
    expect(splitTarget('/a/b?x=1&y')).toEqual({ path: '/a/b', query: 'x=1&y' });
    expect(splitTarget('/a')).toEqual({ path: '/a', query: '' });
    expect(splitTarget('http://example.com:8080/p?q')).toEqual({ path: '/p', query: 'q' });
    expect(splitTarget('http://example.com')).toEqual({ path: '/', query: '' });
    expect(splitTarget('http://example.com?q')).toEqual({ path: '/', query: 'q' });
    expect(splitTarget('*')).toEqual({ path: '*', query: '' });
  });

  it('drops a fragment, splits at the first "?", and reads a scheme only at the start', () => {
    expect(splitTarget('/p?a=1?b#frag')).toEqual({ path: '/p', query: 'a=1?b' });
    expect(splitTarget('/p#f?x')).toEqual({ path: '/p', query: '' });
    expect(splitTarget('HTTPS://h:1/a/b')).toEqual({ path: '/a/b', query: '' });
    expect(splitTarget('/http://h/x')).toEqual({ path: '/http://h/x', query: '' });
    // Not origin-form, but the split is still by position: nothing before "?" or "#" is an empty path.
    expect(splitTarget('?a=1')).toEqual({ path: '', query: 'a=1' });
    expect(splitTarget('#f')).toEqual({ path: '', query: '' });
  });
});
