/**
 * Trailer field lines follow the same line rules as header field lines (RFC 9112 §7.1.2 and
 * §2.2): each ends in CRLF, and a bare LF or a bare CR inside a trailer is refused with 400,
 * never read as a line end (a proxy that did would see different trailers: smuggling, §11.2).
 */
import { describe, expect, it } from 'vitest';
import type { ParseEvent } from '../../src/http/parser.js';
import { RequestParser } from '../../src/http/parser.js';

function events(text: string): ParseEvent[] {
  const p = new RequestParser();
  p.feed(Buffer.from(text, 'latin1'));
  const out: ParseEvent[] = [];
  for (let ev = p.next(); ev; ev = p.next()) out.push(ev);
  return out;
}

const chunked = (trailers: string) => `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n${trailers}`;

describe('trailer line endings (RFC 9112 §7.1.2, §2.2)', () => {
  it('a trailer ended by a bare LF is 400 bare-lf, after the body was delivered', () => {
    const ev = events(chunked('X-Sum: 1\n\r\n'));
    expect(ev.map((e) => e.type)).toEqual(['head', 'body', 'error']);
    expect(ev.pop()).toEqual({ type: 'error', status: 400, reason: 'bare-lf' });
  });

  it('a bare LF alone where the empty line ending the trailers belongs is 400 bare-lf', () => {
    expect(events(chunked('X-Sum: 1\r\n\n')).pop()).toEqual({ type: 'error', status: 400, reason: 'bare-lf' });
  });

  it('a bare CR inside a trailer value is 400 bare-cr', () => {
    expect(events(chunked('X-Sum: 1\r2\r\n\r\n')).pop()).toEqual({ type: 'error', status: 400, reason: 'bare-cr' });
  });

  it('the same trailers with CRLF line ends are accepted', () => {
    expect(events(chunked('X-Sum: 1\r\n\r\n')).pop()).toEqual({ type: 'end', trailers: [['x-sum', '1']] });
  });
});
