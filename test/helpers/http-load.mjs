// A load client for the proxy interop tests, run by plain `node` inside a test namespace.
// Usage: node http-load.mjs BASE_URL COUNT CONCURRENCY [PATHS]
// Sends COUNT GET requests over keep-alive connections, CONCURRENCY at a time; request i goes
// to /item/(i mod PATHS) when PATHS is given, else to /. Prints one JSON line:
//   {"counts":{NAME:N},"failures":N,"statuses":{CODE:N},"paths":{PATH:[NAMES]}}
// where NAME is the response body (the upstream's name).
import http from 'node:http';

const [base, countText, concText, pathsText] = process.argv.slice(2);
const count = Number(countText);
const conc = Number(concText);
const paths = pathsText ? Number(pathsText) : 0;
const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
const counts = {};
const statuses = {};
const perPath = {};
let failures = 0;
let next = 0;

function one(i) {
  const path = paths ? `/item/${i % paths}` : '/';
  return new Promise((resolve) => {
    const req = http.get(`${base}${path}`, { agent, timeout: 20_000 }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        if (res.statusCode === 200) {
          counts[body] = (counts[body] ?? 0) + 1;
          (perPath[path] ??= new Set()).add(body);
        } else failures++;
        resolve();
      });
      res.on('error', () => {
        failures++;
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => {
      failures++;
      resolve();
    });
  });
}

async function worker() {
  while (next < count) await one(next++);
}

await Promise.all(Array.from({ length: conc }, worker));
agent.destroy();
const pathsOut = Object.fromEntries(Object.entries(perPath).map(([p, s]) => [p, [...s]]));
process.stdout.write(JSON.stringify({ counts, failures, statuses, paths: pathsOut }) + '\n');
