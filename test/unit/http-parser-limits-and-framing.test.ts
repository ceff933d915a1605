/**
 * The HTTP/1.1 request parser (RFC 9112) at the exact edges of its rules: every limit one byte
 * or one field below and at the point where it answers, the framing decisions of §6.3 in the
 * order the RFC gives them, the request-line checks in the order a server reports them, and the
 * parser's state between and after messages.
 */
import { describe, expect, it } from 'vitest';
import type { ParseEvent, ParserLimits } from '../../src/http/parser.js';
import { RequestParser } from '../../src/http/parser.js';

const b = (s: string) => Buffer.from(s, 'latin1');

/** Every event of one parse, fed whole. */
function events(text: string, limits: Partial<ParserLimits> = {}): ParseEvent[] {
  const p = new RequestParser(limits);
  p.feed(b(text));
  const out: ParseEvent[] = [];
  for (let ev = p.next(); ev; ev = p.next()) out.push(ev);
  return out;
}

function firstError(text: string, limits: Partial<ParserLimits> = {}): string | undefined {
  const e = events(text, limits).find((x) => x.type === 'error');
  return e?.type === 'error' ? `${e.status} ${e.reason}` : undefined;
}

function head(text: string) {
  const e = events(text).find((x) => x.type === 'head');
  if (e?.type !== 'head') throw new Error(`no head: ${JSON.stringify(events(text))}`);
  return e.head;
}

const H = 'Host: a\r\n';

describe('request-line (RFC 9112 §3)', () => {
  it('is exactly method SP target SP version: one space each, nothing before or after', () => {
    expect(firstError(`GET / HTTP/1.1\r\n${H}\r\n`)).toBeUndefined();
    expect(firstError(` GET / HTTP/1.1\r\n${H}\r\n`)).toBe('400 bad-request-line');
    expect(firstError(`GET  / HTTP/1.1\r\n${H}\r\n`)).toBe('400 bad-request-line');
    expect(firstError(`GET  HTTP/1.1\r\n${H}\r\n`)).toBe('400 bad-target'); // an empty target
    expect(firstError(`GET / HTTP/1.1 \r\n${H}\r\n`)).toBe('400 bad-request-line');
    expect(firstError(`GET /\r\n${H}\r\n`)).toBe('400 bad-request-line');
    expect(firstError(`GET\r\n${H}\r\n`)).toBe('400 bad-request-line');
  });

  it('reports the method before the target, the target length before the version, the version before the target text', () => {
    expect(firstError(`G@T /\x01 HTTP/9\r\n`)).toBe('400 bad-method');
    expect(firstError(`GET /${'a'.repeat(20)} HTTP/9\r\n`, { maxTargetLength: 10 })).toBe('414 target-too-long');
    expect(firstError(`GET /\x01 HTTP/9\r\n`)).toBe('400 bad-version');
    expect(firstError(`GET /\x01 HTTP/2.0\r\n`)).toBe('505 unsupported-version');
    expect(firstError(`GET /\x01 HTTP/1.1\r\n`)).toBe('400 bad-target');
  });

  it('knows HTTP/1.0 and 1.1 only; other well-formed versions get 505, malformed ones 400', () => {
    for (const v of ['HTTP/1.2', 'HTTP/0.9', 'HTTP/2.0', 'HTTP/3.1']) expect(firstError(`GET / ${v}\r\n${H}\r\n`), v).toBe('505 unsupported-version');
    for (const v of ['HTTP/1.10', 'http/1.1', 'HTTP/1', 'HTTP/1.1x', 'xHTTP/1.1', 'HTTP/a.b']) expect(firstError(`GET / ${v}\r\n${H}\r\n`), v).toBe('400 bad-version');
    expect(head(`GET / HTTP/1.0\r\n\r\n`).version).toBe('1.0');
  });

  it('a target of exactly maxTargetLength is fine, one more is 414; a line past the line limit is 414 before it ends', () => {
    const target = (n: number) => '/' + 'a'.repeat(n - 1);
    expect(head(`GET ${target(100)} HTTP/1.1\r\n${H}\r\n`).target.length).toBe(100);
    expect(events(`GET ${target(100)} HTTP/1.1\r\n${H}\r\n`, { maxTargetLength: 100 })[0]!.type).toBe('head');
    expect(firstError(`GET ${target(101)} HTTP/1.1\r\n${H}\r\n`, { maxTargetLength: 100 })).toBe('414 target-too-long');
    // The whole line may take the target plus 64 bytes of method, spaces and version.
    const p = new RequestParser({ maxTargetLength: 100 });
    p.feed(b('GET ' + target(160)));
    expect(p.next()).toBeNull(); // 164 bytes, no end yet: could still be a line of 164 + CRLF
    p.feed(b('a'));
    expect(p.next()).toEqual({ type: 'error', status: 414, reason: 'request-line-too-long' });
  });

  it('ignores up to 8 empty lines before a request-line (RFC 9112 §2.2), refuses the 9th', () => {
    expect(head(`${'\r\n'.repeat(8)}GET / HTTP/1.1\r\n${H}\r\n`).method).toBe('GET');
    expect(firstError(`${'\r\n'.repeat(9)}GET / HTTP/1.1\r\n${H}\r\n`)).toBe('400 too-many-empty-lines');
    // The count starts again for each message.
    const two = `GET / HTTP/1.1\r\n${H}\r\n${'\r\n'.repeat(8)}GET /2 HTTP/1.1\r\n${H}\r\n`;
    expect(events(two).filter((e) => e.type === 'head').length).toBe(2);
  });
});

describe('field section limits', () => {
  const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-${i}: v\r\n`).join('');

  it('maxHeaderCount fields are fine, one more is 431', () => {
    expect(head(`GET / HTTP/1.1\r\n${H}${fields(9)}\r\n`).fields.length).toBe(10);
    expect(events(`GET / HTTP/1.1\r\n${H}${fields(9)}\r\n`, { maxHeaderCount: 10 })[0]!.type).toBe('head');
    expect(firstError(`GET / HTTP/1.1\r\n${H}${fields(10)}\r\n`, { maxHeaderCount: 10 })).toBe('431 too-many-fields');
  });

  it('maxHeaderBytes counts every field line with its CRLF and the final empty line', () => {
    const section = `${H}X: ${'v'.repeat(20)}\r\n\r\n`; // 9 + 25 + 2 = 36 bytes
    expect(section.length).toBe(36);
    expect(events(`GET / HTTP/1.1\r\n${section}`, { maxHeaderBytes: 36 })[0]!.type).toBe('head');
    expect(firstError(`GET / HTTP/1.1\r\n${section}`, { maxHeaderBytes: 35 })).toBe('431 header-section-too-large');
  });

  it('trailers have their own budget: maxHeaderCount fields, then 431 too-many-trailer-fields', () => {
    const chunked = (trailers: string) => `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n${trailers}\r\n`;
    const ok = events(chunked(fields(3)), { maxHeaderCount: 3 });
    expect(ok[ok.length - 1]).toEqual({ type: 'end', trailers: [['x-0', 'v'], ['x-1', 'v'], ['x-2', 'v']] });
    expect(firstError(chunked(fields(4)), { maxHeaderCount: 3 })).toBe('431 too-many-trailer-fields');
    // The trailer section's lines add up against maxHeaderBytes like the header's (39 bytes):
    // 4 × 11 + 2 = 46 bytes.
    const four = chunked('T1: 45678\r\nT2: 45678\r\nT3: 45678\r\nT4: 45678\r\n');
    expect(events(four, { maxHeaderBytes: 46 }).pop()).toMatchObject({ type: 'end' });
    expect(firstError(four, { maxHeaderBytes: 45 })).toBe('431 trailer-section-too-large');
    expect(firstError(four, { maxHeaderBytes: 40 })).toBe('431 trailer-section-too-large');
    // A trailer line with a bad name is a 400 like a header line.
    expect(firstError(chunked('Bad Name: x\r\n'))).toMatch(/^400 /);
    // The header's bytes do not count against the trailers: 84 + 8 bytes, each within 90.
    const big = `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nX: ${'v'.repeat(40)}\r\n\r\n0\r\nT: 1\r\n\r\n`;
    expect(events(big, { maxHeaderBytes: 90 }).pop()).toEqual({ type: 'end', trailers: [['t', '1']] });
    expect(firstError(big, { maxHeaderBytes: 83 })).toBe('431 header-section-too-large');
  });
});

describe('message body length (RFC 9112 §6.3)', () => {
  it('a Content-Length body exactly at the limit is read; one byte over is 413 before any body', () => {
    const post = (n: number) => `POST / HTTP/1.1\r\n${H}Content-Length: ${n}\r\n\r\n${'x'.repeat(n)}`;
    const ok = events(post(10), { maxBodyBytes: 10 });
    expect(ok.map((e) => e.type)).toEqual(['head', 'body', 'end']);
    expect(events(post(11), { maxBodyBytes: 10 }).map((e) => (e.type === 'error' ? e.status : e.type))).toEqual(['head', 413]);
  });

  it('chunked bodies count every chunk against the limit', () => {
    const chunked = (sizes: number[]) =>
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${sizes.map((n) => `${n.toString(16)}\r\n${'y'.repeat(n)}\r\n`).join('')}0\r\n\r\n`;
    expect(events(chunked([4, 6]), { maxBodyBytes: 10 }).pop()).toEqual({ type: 'end', trailers: [] });
    const over = events(chunked([4, 7]), { maxBodyBytes: 10 });
    expect(over.pop()).toEqual({ type: 'error', status: 413, reason: 'body-too-large' });
    expect(over.filter((e) => e.type === 'body').length).toBe(1); // the first chunk, not the second
  });

  it('a Content-Length of more than 15 digits is beyond any limit (413), not rounded', () => {
    const h = head(`POST / HTTP/1.1\r\n${H}Content-Length: 9999999999999999\r\n\r\n`);
    expect(h.contentLength).toBe(Number.MAX_SAFE_INTEGER);
    expect(head(`POST / HTTP/1.1\r\n${H}Content-Length: 999999999999999\r\n\r\n`).contentLength).toBe(999999999999999);
    expect(firstError(`POST / HTTP/1.1\r\n${H}Content-Length: 9999999999999999\r\n\r\n`)).toBe('413 body-too-large');
  });

  it('Transfer-Encoding: chunked, alone and last, frames the body; every other shape is refused with its reason', () => {
    const te = (v: string, version = '1.1', extra = '') => `POST / HTTP/${version}\r\n${H}${extra}Transfer-Encoding: ${v}\r\n\r\n0\r\n\r\n`;
    expect(head(te('chunked')).chunked).toBe(true);
    expect(head(te('Chunked')).chunked).toBe(true);
    expect(head(te('chunked')).contentLength).toBeNull();
    expect(firstError(te('chunked', '1.0'))).toBe('400 transfer-encoding-in-http10');
    expect(firstError(te('chunked', '1.1', 'Content-Length: 0\r\n'))).toBe('400 content-length-and-transfer-encoding');
    expect(firstError(te(''))).toBe('400 bad-transfer-encoding');
    expect(firstError(te('chunked, gzip'))).toBe('400 chunked-not-last');
    expect(firstError(te('chunked, chunked'))).toBe('400 chunked-twice');
    expect(firstError(te('gzip, chunked'))).toBe('501 unsupported-transfer-coding');
    // Split across two field lines, the list is one list (RFC 9110 §5.3).
    expect(firstError(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n`)).toBe('501 unsupported-transfer-coding');
  });

  it('without a body the message ends right after its head; Content-Length: 0 likewise', () => {
    expect(events(`GET / HTTP/1.1\r\n${H}\r\n`).map((e) => e.type)).toEqual(['head', 'end']);
    expect(events(`POST / HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`).map((e) => e.type)).toEqual(['head', 'end']);
  });
});

describe('Host and persistence (RFC 9112 §3.2, §9.3)', () => {
  it('HTTP/1.1 needs exactly one Host; HTTP/1.0 may go without', () => {
    expect(firstError('GET / HTTP/1.1\r\n\r\n')).toBe('400 missing-host');
    expect(firstError(`GET / HTTP/1.1\r\n${H}${H}\r\n`)).toBe('400 duplicate-host');
    expect(firstError(`GET / HTTP/1.0\r\n${H}${H}\r\n`)).toBe('400 duplicate-host');
    expect(head('GET / HTTP/1.0\r\n\r\n').headers.get('host')).toBeUndefined();
  });

  it('repeated fields are joined with ", " in the headers map; the field list keeps each line', () => {
    const h = head(`GET / HTTP/1.1\r\n${H}Accept: a\r\naccept: b\r\n\r\n`);
    expect(h.headers.get('accept')).toBe('a, b');
    expect(h.fields).toEqual([['host', 'a'], ['accept', 'a'], ['accept', 'b']]);
  });

  it('keep-alive: HTTP/1.1 unless "close"; HTTP/1.0 only with "keep-alive"; close wins', () => {
    expect(head(`GET / HTTP/1.1\r\n${H}\r\n`).keepAlive).toBe(true);
    expect(head(`GET / HTTP/1.1\r\n${H}Connection: Close\r\n\r\n`).keepAlive).toBe(false);
    expect(head(`GET / HTTP/1.1\r\n${H}Connection: upgrade, close\r\n\r\n`).keepAlive).toBe(false);
    expect(head('GET / HTTP/1.0\r\n\r\n').keepAlive).toBe(false);
    expect(head('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n').keepAlive).toBe(true);
    expect(head('GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n').keepAlive).toBe(false);
    expect(head('GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n').keepAlive).toBe(false);
  });
});

describe('parser state between and after messages', () => {
  it('idle only between messages with nothing buffered, empty lines included', () => {
    const p = new RequestParser();
    expect(p.idle).toBe(true);
    p.feed(b('\r\n'));
    expect(p.next()).toBeNull();
    expect(p.idle).toBe(false); // an empty line was taken: a request has started
    p.feed(b(`GET / HTTP/1.1\r\n${H}\r\n`));
    expect(p.next()?.type).toBe('head');
    expect(p.idle).toBe(false);
    expect(p.next()?.type).toBe('end');
    expect(p.idle).toBe(true);
    p.feed(b('G'));
    expect(p.idle).toBe(false);
  });

  it('bodyRemaining follows the body: exact for Content-Length, unknown when chunked, 0 otherwise', () => {
    const p = new RequestParser();
    expect(p.bodyRemaining).toBe(0);
    p.feed(b(`POST / HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nab`));
    expect(p.next()?.type).toBe('head');
    expect(p.bodyRemaining).toBe(5);
    expect(p.next()).toMatchObject({ type: 'body' });
    expect(p.bodyRemaining).toBe(3);
    p.feed(b('cde'));
    expect(p.next()).toMatchObject({ type: 'body' });
    expect(p.bodyRemaining).toBe(0);
    expect(p.next()?.type).toBe('end');

    const q = new RequestParser();
    q.feed(b(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n`));
    expect(q.next()?.type).toBe('head');
    expect(q.bodyRemaining).toBeUndefined();
    expect(q.next()?.type).toBe('body');
    expect(q.bodyRemaining).toBeUndefined();
    expect(q.next()).toBeNull();
    expect(q.bodyRemaining).toBeUndefined();

    const r = new RequestParser();
    r.feed(b(`GET / HTTP/1.1\r\n${H}\r\n`));
    expect(r.next()?.type).toBe('head');
    expect(r.bodyRemaining).toBe(0);
  });

  it('the body limit can be set only between a head and its body, and applies to that message only', () => {
    const p = new RequestParser({ maxBodyBytes: 100 });
    expect(() => p.setBodyLimit(10)).toThrow(/only between a head event and its body/);
    p.feed(b(`POST / HTTP/1.1\r\n${H}Content-Length: 20\r\n\r\n${'x'.repeat(20)}POST / HTTP/1.1\r\n${H}Content-Length: 20\r\n\r\n${'x'.repeat(20)}`));
    expect(p.next()?.type).toBe('head');
    p.setBodyLimit(30);
    expect(p.next()?.type).toBe('body');
    expect(() => p.setBodyLimit(10)).toThrow();
    expect(p.next()?.type).toBe('end');
    expect(p.next()?.type).toBe('head');
    expect(p.next()?.type).toBe('body'); // back to the default of 100

    const q = new RequestParser();
    q.feed(b(`POST / HTTP/1.1\r\n${H}Content-Length: 20\r\n\r\n${'x'.repeat(20)}`));
    expect(q.next()?.type).toBe('head');
    q.setBodyLimit(19);
    expect(q.next()).toEqual({ type: 'error', status: 413, reason: 'body-too-large' });
  });

  it('after an error nothing more is parsed or buffered', () => {
    const p = new RequestParser();
    p.feed(b('BAD REQUEST LINE HERE\r\nmore'));
    expect(p.failed).toBe(false);
    expect(p.next()).toMatchObject({ type: 'error', status: 400 });
    expect(p.failed).toBe(true);
    expect(p.bufferedBytes).toBe(0);
    p.feed(b(`GET / HTTP/1.1\r\n${H}\r\n`));
    expect(p.bufferedBytes).toBe(0);
    expect(p.next()).toBeNull();
  });

  it('a chunk must be followed by exactly CRLF', () => {
    const body = (after: string) => `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc${after}0\r\n\r\n`;
    expect(events(body('\r\n')).pop()).toEqual({ type: 'end', trailers: [] });
    for (const bad of ['x\r\n', '\n', 'x\n', '\r\r\n']) expect(firstError(body(bad)), JSON.stringify(bad)).toBe('400 bad-chunk-terminator');
  });

  it('a pipelined request after a chunked one with trailers starts clean', () => {
    const text = `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nT: 1\r\n\r\nGET /next HTTP/1.1\r\n${H}\r\n`;
    const evs = events(text, { maxBodyBytes: 2 });
    expect(evs.map((e) => e.type)).toEqual(['head', 'body', 'end', 'head', 'end']);
    const second = evs[3];
    expect(second?.type === 'head' && second.head.fields).toEqual([['host', 'a']]);
  });
});
