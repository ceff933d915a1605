// An upstream HTTP server for the proxy interop tests, run by plain `node` inside a test
// namespace (on the kernel's TCP). Usage: node http-upstream.mjs HOST PORT NAME [DELAY_MS]
//   GET  /_count      {"requests":N,"posts":N} (not counted itself)
//   GET  /bytes/N     N bytes, byte i = i mod 256, streamed with backpressure
//   POST /reset       counted, then the connection is reset without an answer
//   POST /sink        reads the body, answers its length
//   anything else     the server's NAME (after DELAY_MS), with X-Upstream: NAME
// Prints "listening" when ready. Exits on SIGTERM/SIGKILL like any server.
import http from 'node:http';

const [host, portText, name, delayText] = process.argv.slice(2);
const delay = Number(delayText ?? 0);
let requests = 0;
let posts = 0;
const pattern = Buffer.alloc(64 * 1024);
for (let i = 0; i < pattern.length; i++) pattern[i] = i & 0xff;

const server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/_count') {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ requests, posts }));
    return;
  }
  requests++;
  if (req.method === 'POST') posts++;
  if (req.method === 'POST' && path === '/reset') {
    req.socket.destroy();
    return;
  }
  if (req.method === 'POST' && path === '/sink') {
    let n = 0;
    req.on('data', (c) => (n += c.length));
    req.on('end', () => res.end(String(n)));
    return;
  }
  if (path.startsWith('/bytes/')) {
    let left = Number(path.slice('/bytes/'.length));
    res.setHeader('Content-Length', left);
    res.setHeader('Content-Type', 'application/octet-stream');
    const pump = () => {
      while (left > 0) {
        const k = Math.min(left, pattern.length);
        left -= k;
        if (!res.write(k === pattern.length ? pattern : pattern.subarray(0, k))) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
    return;
  }
  req.resume();
  const reply = () => {
    res.setHeader('Content-Type', 'text/plain');
    res.setHeader('X-Upstream', name);
    res.end(name);
  };
  if (delay > 0) setTimeout(reply, delay);
  else reply();
});
server.listen(Number(portText), host, () => process.stdout.write('listening\n'));
