/**
 * A request-line whose first space comes first: the method before it is empty. RFC 9112 §3
 * (request-line = method SP request-target SP HTTP-version) needs a method of at least one
 * tchar, so the line itself is malformed and is refused as such, before any of its parts is
 * looked at.
 */
import { describe, expect, it } from 'vitest';
import { RequestParser } from '../../src/http/parser.js';

function firstEvent(text: string) {
  const p = new RequestParser();
  p.feed(Buffer.from(text, 'latin1'));
  return p.next();
}

describe('request-line with an empty method (RFC 9112 §3)', () => {
  it('a line starting with its first space is a bad request-line, even with exactly two spaces', () => {
    expect(firstEvent(' / HTTP/1.1\r\nHost: a\r\n\r\n')).toEqual({ type: 'error', status: 400, reason: 'bad-request-line' });
    expect(firstEvent(' /index.html HTTP/1.0\r\n\r\n')).toEqual({ type: 'error', status: 400, reason: 'bad-request-line' });
  });

  it('the same line with a method is accepted', () => {
    expect(firstEvent('GET / HTTP/1.1\r\nHost: a\r\n\r\n')).toMatchObject({ type: 'head', head: { method: 'GET', target: '/' } });
  });
});
