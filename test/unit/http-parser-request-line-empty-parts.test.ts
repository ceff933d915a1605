/**
 * Request-lines with an empty part (RFC 9112 §3: request-line = method SP request-target SP
 * HTTP-version). A line whose first space comes first has an empty method: the line itself is
 * malformed and is refused as such, before any of its parts is looked at. A line ending in its
 * second space has an empty HTTP-version, which is malformed (400, §2.3: HTTP-name "/" DIGIT "."
 * DIGIT), not a well-formed version we do not support (505).
 */
import { describe, expect, it } from 'vitest';
import { RequestParser } from '../../src/http/parser.js';

function firstEvent(text: string) {
  const p = new RequestParser();
  p.feed(Buffer.from(text, 'latin1'));
  return p.next();
}

describe('request-line with an empty part (RFC 9112 §3)', () => {
  it('a line starting with its first space is a bad request-line, even with exactly two spaces', () => {
    expect(firstEvent(' / HTTP/1.1\r\nHost: a\r\n\r\n')).toEqual({ type: 'error', status: 400, reason: 'bad-request-line' });
    expect(firstEvent(' /index.html HTTP/1.0\r\n\r\n')).toEqual({ type: 'error', status: 400, reason: 'bad-request-line' });
  });

  it('a line ending in its second space has an empty HTTP-version: malformed, 400 bad-version, not 505 (RFC 9112 §2.3)', () => {
    expect(firstEvent('GET / \r\nHost: a\r\n\r\n')).toEqual({ type: 'error', status: 400, reason: 'bad-version' });
    expect(firstEvent('POST /a \r\n\r\n')).toEqual({ type: 'error', status: 400, reason: 'bad-version' });
  });

  it('the same line with a method is accepted', () => {
    expect(firstEvent('GET / HTTP/1.1\r\nHost: a\r\n\r\n')).toMatchObject({ type: 'head', head: { method: 'GET', target: '/' } });
  });
});
