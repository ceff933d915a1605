/**
 * Static files for `netstack up --root DIR`. Application code (it reads files), kept
 * out of the parser and the server.
 *
 * No request may reach outside DIR. The path is decoded one segment at a time, and a
 * segment that decodes to `..`, or contains `/`, `\` or NUL, is refused (so `%2e%2e`
 * and `%2f` do not help). Then the candidate is resolved with realpath, which follows
 * symlinks, and must still lie inside realpath(DIR). Only regular files are served.
 */
import { constants as fsConstants } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { extname, join, sep } from 'node:path';
import type { HttpRequest, HttpResponse } from './server.js';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.xml': 'application/xml',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.tar': 'application/x-tar',
  '.mp3': 'audio/mpeg',
  '.wav': 'audio/wav',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.pcap': 'application/vnd.tcpdump.pcap',
};

/** Content-Type for a file name, by extension; application/octet-stream when unknown. */
export function contentTypeFor(file: string): string {
  return CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * Decode a percent-encoded URL path into safe segments, or say why not:
 * 'bad-encoding' (→ 400) or 'forbidden' (→ 403).
 */
export function safeSegments(path: string): string[] | 'bad-encoding' | 'forbidden' {
  if (!path.startsWith('/')) return 'forbidden';
  const segments: string[] = [];
  for (const raw of path.slice(1).split('/')) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return 'bad-encoding';
    }
    if (seg === '..' || seg.includes('/') || seg.includes('\\') || seg.includes('\0')) return 'forbidden';
    if (seg === '' || seg === '.') continue;
    segments.push(seg);
  }
  return segments;
}

/**
 * Where to send a request for a directory without its trailing slash: the path with empty
 * and `.` segments dropped, plus `/`. Never `//host/...`: a Location starting with two
 * slashes is protocol-relative (RFC 3986 §4.2), so `GET //evil.example` would redirect
 * off-site (an open redirect). nginx merges slashes the same way.
 */
export function directoryLocation(path: string): string {
  const segments = path.split('/').filter((s) => s !== '' && s !== '.');
  return '/' + segments.map((s) => s + '/').join('');
}

/** Handler serving GET/HEAD for files under `root`. */
export function createStaticHandler(root: string): (req: HttpRequest, res: HttpResponse) => Promise<void> {
  let rootReal: Promise<string> | undefined;

  return async (req, res) => {
    rootReal ??= realpath(root);
    const base = await rootReal;
    const segments = safeSegments(req.path);
    if (segments === 'bad-encoding') return sendText(res, 400, 'bad percent-encoding in path\n');
    if (segments === 'forbidden') return sendText(res, 403, 'forbidden\n');

    let file = await resolveInside(base, join(base, ...segments));
    if (file === 'forbidden') return sendText(res, 403, 'forbidden\n');
    if (file === 'missing') return sendText(res, 404, 'not found\n');
    let info = await stat(file);
    if (info.isDirectory()) {
      if (!req.path.endsWith('/')) {
        // Relative links in index.html need the trailing slash.
        res.setHeader('Location', directoryLocation(req.path) + (req.query ? `?${req.query}` : ''));
        return sendText(res, 301, 'moved\n');
      }
      file = await resolveInside(base, join(file, 'index.html'));
      if (file === 'forbidden') return sendText(res, 403, 'forbidden\n');
      if (file === 'missing') return sendText(res, 404, 'not found\n');
      info = await stat(file);
    }
    // FIFOs, devices and sockets could block or never end.
    if (!info.isFile()) return sendText(res, info.isDirectory() ? 404 : 403, info.isDirectory() ? 'not found\n' : 'forbidden\n');

    // O_NOFOLLOW: the checked path is already real; refuse a symlink swapped in since.
    const fh = await open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW).catch(() => undefined);
    if (!fh) return sendText(res, 404, 'not found\n');
    try {
      const size = (await fh.stat()).size;
      res.setHeader('Content-Type', contentTypeFor(file));
      res.setHeader('Content-Length', size);
      res.setHeader('Last-Modified', info.mtime.toUTCString());
      if (req.method === 'HEAD' || size === 0) return res.end();
      // Stream with backpressure; never more than the announced size even if the file grows.
      const stream = fh.createReadStream({ start: 0, end: size - 1, highWaterMark: 64 * 1024, autoClose: false });
      for await (const chunk of stream as AsyncIterable<Buffer>) await res.write(chunk);
      res.end();
    } finally {
      await fh.close();
    }
  };
}

/** realpath(candidate) if it lies inside `base`; 'missing' if it does not exist. */
async function resolveInside(base: string, candidate: string): Promise<string | 'missing' | 'forbidden'> {
  let real: string;
  try {
    real = await realpath(candidate);
  } catch (err) {
    const code = (err as { code?: string }).code;
    return code === 'EACCES' || code === 'EPERM' ? 'forbidden' : 'missing';
  }
  if (real !== base && !real.startsWith(base.endsWith(sep) ? base : base + sep)) return 'forbidden';
  return real;
}

function sendText(res: HttpResponse, status: number, text: string): void {
  res.status = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(text);
}
