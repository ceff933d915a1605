/**
 * The upstream response parser: every framing, split at every byte, and hostile responses
 * that could be read two ways (each must be an error, which the proxy turns into 502).
 */
import { describe, expect, it } from 'vitest';
import { ResponseParser } from '../../src/http/response-parser.js';
import type { ResponseEvent, ResponseHead } from '../../src/http/response-parser.js';

interface Outcome {
  informational: number[];
  head?: Pick<ResponseHead, 'status' | 'reason' | 'framing' | 'contentLength' | 'keepAlive' | 'version'> & { fields: string[] };
  body: string;
  ended: boolean;
  trailers: string[];
  error?: string;
  extra: boolean;
}

function drain(p: ResponseParser, out: Outcome): void {
  for (let ev: ResponseEvent | null = p.next(), guard = 0; ev && guard < 100_000; ev = p.next(), guard++) {
    if (ev.type === 'informational') out.informational.push(ev.status);
    else if (ev.type === 'head') {
      const { status, reason, framing, contentLength, keepAlive, version, fields } = ev.head;
      out.head = { status, reason, framing, contentLength, keepAlive, version, fields: fields.map(([n, v]) => `${n}=${v}`) };
    } else if (ev.type === 'body') out.body += Buffer.from(ev.data).toString('latin1');
    else if (ev.type === 'end') {
      out.ended = true;
      out.trailers = ev.trailers.map(([n, v]) => `${n}=${v}`);
    } else out.error = ev.reason;
  }
}

/** Feed `text` in the pieces given by `cuts` (byte offsets), then close if `close`. */
function parse(text: string, opts: { method?: string; cuts?: number[]; close?: boolean } = {}): Outcome {
  const bytes = Buffer.from(text, 'latin1');
  const p = new ResponseParser(opts.method ?? 'GET');
  const out: Outcome = { informational: [], body: '', ended: false, trailers: [], extra: false };
  let at = 0;
  for (const cut of [...(opts.cuts ?? []), bytes.length]) {
    // Copies: the parser may keep views of what it was fed.
    p.feed(Buffer.from(bytes.subarray(at, cut)));
    at = cut;
    drain(p, out);
  }
  if (opts.close) {
    p.end();
    drain(p, out);
  }
  out.extra = p.extra;
  return out;
}

/** The outcome is the same whole, split at any one byte, and fed one byte at a time. */
function expectEverySplit(text: string, opts: { method?: string; close?: boolean } = {}): Outcome {
  const whole = parse(text, opts);
  for (let i = 0; i <= text.length; i++) expect(parse(text, { ...opts, cuts: [i] }), `split at ${i}`).toEqual(whole);
  expect(parse(text, { ...opts, cuts: Array.from({ length: text.length }, (_, i) => i) })).toEqual(whole);
  return whole;
}

describe('response framing, split at every byte', () => {
  it('Content-Length', () => {
    const r = expectEverySplit('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello');
    expect(r.head).toMatchObject({ status: 200, reason: 'OK', framing: 'length', contentLength: 5, keepAlive: true });
    expect(r.head!.fields).toEqual(['content-length=5', 'x-a=1', 'x-a=2']);
    expect(r.body).toBe('hello');
    expect(r.ended).toBe(true);
    expect(r.extra).toBe(false);
  });

  it('chunked, with extensions and trailers', () => {
    const r = expectEverySplit('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 1\r\n\r\n');
    expect(r.head).toMatchObject({ framing: 'chunked', contentLength: null, keepAlive: true });
    expect(r.body).toBe('hello, world');
    expect(r.trailers).toEqual(['x-sum=1']);
    expect(r.ended).toBe(true);
  });

  it('close-delimited: the body ends when the server closes, and the connection cannot be reused', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end';
    const r = expectEverySplit(text, { close: true });
    expect(r.head).toMatchObject({ framing: 'close', keepAlive: false });
    expect(r.body).toBe('until the end');
    expect(r.ended).toBe(true);
    expect(parse(text).ended).toBe(false); // not before the close
  });

  it('interim 1xx responses come before the final one', () => {
    const r = expectEverySplit('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok');
    expect(r.informational).toEqual([100, 103]);
    expect(r.head).toMatchObject({ status: 201 });
    expect(r.body).toBe('ok');
  });

  it('a response to HEAD has no body whatever its Content-Length says', () => {
    const r = expectEverySplit('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', { method: 'HEAD' });
    expect(r.head).toMatchObject({ framing: 'none', contentLength: 1000, keepAlive: true });
    expect(r.ended).toBe(true);
    expect(r.body).toBe('');
  });

  it('204 and 304 have no body', () => {
    expect(expectEverySplit('HTTP/1.1 204 No Content\r\n\r\n')).toMatchObject({ ended: true, body: '', head: { framing: 'none' } });
    const r = expectEverySplit('HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: "x"\r\n\r\n');
    expect(r).toMatchObject({ ended: true, body: '', head: { framing: 'none', contentLength: 50 } });
  });

  it('keep-alive: HTTP/1.0 only with Connection: keep-alive; Connection: close ends it', () => {
    expect(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').head!.keepAlive).toBe(false);
    expect(parse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').head!.keepAlive).toBe(true);
    expect(parse('HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n').head!.keepAlive).toBe(false);
  });

  it('a missing reason phrase is accepted; identical repeated Content-Lengths are one length', () => {
    expect(parse('HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx')).toMatchObject({ head: { status: 200, reason: '' }, body: 'x' });
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 02\r\n\r\nab')).toMatchObject({ body: 'ab', ended: true });
  });

  it('bytes after the framed body are flagged, not taken as a next response', () => {
    const r = parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 200 OK\r\n');
    expect(r).toMatchObject({ body: 'ab', ended: true, extra: true });
  });
});

describe('responses cut short', () => {
  it('a close before any byte is told apart from a broken response', () => {
    const p = new ResponseParser('GET');
    p.end();
    expect(p.untouched).toBe(true);
    expect(p.next()).toEqual({ type: 'error', reason: 'closed-before-response' });
  });

  it.each([
    ['in the status line', 'HTTP/1.1 200', 'closed-before-response'],
    ['in the fields', 'HTTP/1.1 200 OK\r\nContent-Le', 'truncated-header'],
    ['in a Content-Length body', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello', 'truncated-body'],
    ['in a chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe', 'truncated-body'],
    ['before the last chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', 'truncated-body'],
  ])('%s is an error', (_what, text, reason) => {
    expect(parse(text, { close: true }).error).toBe(reason);
  });
});

describe('hostile responses are errors (the proxy answers 502)', () => {
  it.each([
    ['Content-Length with Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 'content-length-and-transfer-encoding'],
    ['conflicting Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n', 'conflicting-content-length'],
    ['a Content-Length that is not a number', 'HTTP/1.1 200 OK\r\nContent-Length: 3a\r\n\r\n', 'bad-content-length'],
    ['an empty Content-Length element', 'HTTP/1.1 200 OK\r\nContent-Length: 3,\r\n\r\n', 'bad-content-length'],
    ['a coding other than chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'unsupported-transfer-coding'],
    ['chunked twice', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', 'unsupported-transfer-coding'],
    ['Transfer-Encoding in HTTP/1.0', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'transfer-encoding-in-http10'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n', 'obs-fold'],
    ['a bare LF', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', 'bare-lf'],
    ['a bare CR', 'HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n', 'bare-cr'],
    ['whitespace before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n', 'space-before-colon'],
    ['a NUL in a value', 'HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n', 'bad-field-value'],
    ['an oversized chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n', 'chunk-size-overflow'],
    ['a chunk longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n', 'bad-chunk-terminator'],
    ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'bad-chunk-size'],
    ['HTTP/2 in a status line', 'HTTP/2 200 OK\r\n\r\n', 'bad-status-line'],
    ['HTTP/1.2', 'HTTP/1.2 200 OK\r\n\r\n', 'unsupported-version'],
    ['not HTTP at all', 'ICY 200 OK\r\n\r\n', 'bad-status-line'],
    ['a two-digit status', 'HTTP/1.1 20 OK\r\n\r\n', 'bad-status-line'],
    ['101 Switching Protocols, never asked for', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', 'unexpected-switching-protocols'],
  ])('%s', (_what, text, reason) => {
    const r = parse(text, { close: true });
    expect(r.error).toBe(reason);
    expect(r.ended).toBe(false);
  });

  it('a header section larger than the limit', () => {
    const big = 'HTTP/1.1 200 OK\r\n' + `X-Big: ${'a'.repeat(20_000)}\r\n\r\n`;
    expect(parse(big).error).toBe('header-too-large');
  });

  it('a status line that never ends is refused at the limit, not buffered', () => {
    const p = new ResponseParser('GET', { maxHeaderBytes: 64 * 1024 });
    p.feed(Buffer.alloc(70 * 1024, 0x41));
    expect(p.next()).toEqual({ type: 'error', reason: 'header-too-large' });
    expect(p.bufferedBytes).toBe(0);
  });

  it('endless interim responses', () => {
    expect(parse('HTTP/1.1 100 Continue\r\n\r\n'.repeat(20)).error).toBe('too-many-informational');
  });

  it('too many fields', () => {
    const many = 'HTTP/1.1 200 OK\r\n' + Array.from({ length: 150 }, (_, i) => `X-${i}: v\r\n`).join('') + '\r\n';
    expect(parse(many).error).toBe('too-many-fields');
  });

  it('an error ends the parser: later input is ignored and holds no memory', () => {
    const p = new ResponseParser('GET');
    p.feed(Buffer.from('HTTP/9 nope\r\n'));
    expect(p.next()).toMatchObject({ type: 'error' });
    p.feed(Buffer.alloc(1 << 20));
    expect(p.bufferedBytes).toBe(0);
    expect(p.next()).toBeNull();
  });
});
