/**
 * What the request parser tells its caller about the body in progress and about input it was
 * told to drop: bodyRemaining is unknown (undefined) everywhere inside a chunked body (RFC 9112
 * §7.1: the length is not known until the last chunk), a Content-Length body (§6.3) ends with
 * no trailers, and input discarded by a closing server is never parsed.
 */
import { describe, expect, it } from 'vitest';
import { RequestParser } from '../../src/http/parser.js';

const b = (s: string) => Buffer.from(s, 'latin1');
const H = 'Host: a\r\n';

describe('body progress and discarded input', () => {
  it('bodyRemaining is undefined in the middle of a chunk and while trailers are awaited (RFC 9112 §7.1)', () => {
    const p = new RequestParser();
    p.feed(b(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nab`));
    expect(p.next()?.type).toBe('head');
    expect(p.next()).toMatchObject({ type: 'body' });
    // Three bytes of the five-byte chunk are still to come.
    expect(p.bodyRemaining).toBeUndefined();
    p.feed(b('cde\r\n0\r\n'));
    expect(p.next()).toMatchObject({ type: 'body' });
    expect(p.next()).toBeNull(); // the last chunk arrived; the trailer section has not
    expect(p.bodyRemaining).toBeUndefined();
    p.feed(b('\r\n'));
    expect(p.next()).toEqual({ type: 'end', trailers: [] });
    expect(p.bodyRemaining).toBe(0);
  });

  it('a Content-Length body ends with an empty trailer list (RFC 9112 §6.3: only chunked carries trailers)', () => {
    const p = new RequestParser();
    p.feed(b(`POST / HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabc`));
    expect(p.next()?.type).toBe('head');
    expect(p.next()).toMatchObject({ type: 'body' });
    expect(p.next()).toEqual({ type: 'end', trailers: [] });
  });

  it('discardInput drops every buffered byte: a pipelined request behind it is never parsed', () => {
    const p = new RequestParser();
    const second = `GET /second HTTP/1.1\r\n${H}\r\n`;
    p.feed(b(`GET /first HTTP/1.1\r\n${H}\r\n${second}`));
    expect(p.next()).toMatchObject({ type: 'head', head: { target: '/first' } });
    expect(p.next()?.type).toBe('end');
    expect(p.bufferedBytes).toBe(second.length);
    p.discardInput();
    expect(p.bufferedBytes).toBe(0);
    expect(p.idle).toBe(true);
    expect(p.next()).toBeNull();
  });

  it('discardInput also drops the start of a line still waiting for its end', () => {
    const p = new RequestParser();
    p.feed(b('GET /par'));
    expect(p.next()).toBeNull();
    p.discardInput();
    expect(p.bufferedBytes).toBe(0);
    p.feed(b(`GET /next HTTP/1.1\r\n${H}\r\n`));
    expect(p.next()).toMatchObject({ type: 'head', head: { target: '/next' } });
  });
});
