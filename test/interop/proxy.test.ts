/**
 * The reverse proxy against real servers: four Node HTTP upstreams on the kernel's side of the
 * TUN (in the test namespace), netstack's proxy on the other side (its upstream connections are
 * active opens from our TCP), and the clients (a small Node load client, wrk, curl) in the
 * namespace too. Request counts are read from the responses, never from the proxy itself.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildHttpApp } from '../../src/cli/up.js';
import { parseIpv4 } from '../../src/ip/addr.js';
import { EPHEMERAL_COUNT } from '../../src/ip/ports.js';
import { parseProxyConfig } from '../../src/proxy/config.js';
import { silentLogger } from '../../src/runtime/log.js';
import { Stack } from '../../src/stack.js';
import { patternHash } from '../helpers/http.js';
import type { Netns, NetnsTun } from '../helpers/netns.js';
import { createNetns, createNetnsTun, describeInterop } from '../helpers/netns.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const UPSTREAM = join(repo, 'test/helpers/http-upstream.mjs');
const LOAD = join(repo, 'test/helpers/http-load.mjs');
const dir = mkdtempSync(join(tmpdir(), 'netstack-proxy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** How long the slow upstream takes to answer. */
const SLOW_MS = 200;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start an upstream in `ns` on 0.0.0.0:port; resolves once it listens. */
function startUpstream(ns: Netns, port: number, name: string, delayMs = 0): Promise<ChildProcess> {
  const child = ns.spawn([process.execPath, UPSTREAM, '0.0.0.0', String(port), name, String(delayMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`upstream ${name} did not start`)), 20_000);
    child.stdout!.on('data', (b: Buffer) => {
      if (b.toString().includes('listening')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`upstream ${name} exited (${code})`));
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

interface Load {
  counts: Record<string, number>;
  failures: number;
  statuses: Record<string, number>;
  paths: Record<string, string[]>;
}

async function load(t: NetnsTun, url: string, count: number, concurrency: number, paths = 0): Promise<Load> {
  const r = await t.exec([process.execPath, LOAD, url, String(count), String(concurrency), ...(paths ? [String(paths)] : [])], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Load;
}

/** wrk in the namespace: requests, non-2xx responses and socket errors. */
async function wrk(t: NetnsTun, url: string, seconds: number, extra: string[] = []) {
  const r = await t.exec(['wrk', '-t1', '-c8', `-d${seconds}s`, '--timeout', '5s', ...extra, url], { timeoutMs: (seconds + 30) * 1000 });
  expect(r.code, r.stderr).toBe(0);
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const e = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.stdout);
  const errors = e ? Number(e[1]) + Number(e[2]) + Number(e[3]) + Number(e[4]) : 0;
  return { requests, non2xx, errors, out: r.stdout };
}

describeInterop('reverse proxy on netstack TCP (Node upstreams on the kernel side)', () => {
  let t: NetnsTun;
  let stack: Stack;
  const ups = new Map<string, ChildProcess>();
  const PORTS: Record<string, number> = { a: 8001, b: 8002, c: 8003, slow: 8004 };
  let nextPort = 80;
  const closers: Array<() => void> = [];
  const table: string[] = [];

  beforeAll(async () => {
    t = await createNetnsTun();
    stack = new Stack({ link: t.link, addr: parseIpv4(t.stackAddr)! });
    for (const [name, port] of Object.entries(PORTS)) ups.set(name, await startUpstream(t, port, name, name === 'slow' ? SLOW_MS : 0));
  });

  afterAll(async () => {
    for (const c of closers) c();
    for (const child of ups.values()) await stop(child);
    stack?.close();
    if (table.length) console.log(['distribution over 3,000 requests per algorithm:', ...table].join('\n'));
  });

  /** A proxy with this configuration (UP = the kernel's address) on a fresh port; its base URL. */
  function proxy(text: string) {
    const port = nextPort++;
    const config = parseProxyConfig(text.replaceAll('UP', t.hostAddr), 'test.conf');
    const app = buildHttpApp(stack, { port, logger: silentLogger, proxy: config });
    closers.push(() => app.close());
    return { url: `http://${t.stackAddr}:${port}`, app: app.proxy! };
  }

  async function restart(name: string): Promise<void> {
    await stop(ups.get(name)!);
    ups.set(name, await startUpstream(t, PORTS[name]!, name, name === 'slow' ? SLOW_MS : 0));
  }

  it('round robin: 3,000 requests split exactly 1000/1000/1000', async () => {
    const p = proxy('upstream app { server UP:8001; server UP:8002; server UP:8003; keepalive 8; } server { location / { proxy_pass http://app; } }');
    const r = await load(t, p.url, 3000, 16);
    expect(r.failures).toBe(0);
    expect(r.counts).toEqual({ a: 1000, b: 1000, c: 1000 });
    table.push(`  round robin          a=${r.counts['a']} b=${r.counts['b']} c=${r.counts['c']}`);
  });

  it('weights 3:1:1: exactly 1800/600/600', async () => {
    const p = proxy('upstream app { server UP:8001 weight=3; server UP:8002; server UP:8003; keepalive 8; } server { location / { proxy_pass http://app; } }');
    const r = await load(t, p.url, 3000, 16);
    expect(r.failures).toBe(0);
    expect(r.counts).toEqual({ a: 1800, b: 600, c: 600 });
    table.push(`  weighted 3:1:1       a=${r.counts['a']} b=${r.counts['b']} c=${r.counts['c']}`);
  });

  it('least_conn steers away from a server that answers slowly', async () => {
    const p = proxy('upstream app { least_conn; server UP:8001; server UP:8002; server UP:8004; keepalive 8; } server { location / { proxy_pass http://app; } }');
    const r = await load(t, p.url, 3000, 16);
    expect(r.failures).toBe(0);
    const slow = r.counts['slow'] ?? 0;
    // Round robin would give it 1000 (a third); least_conn keeps its share of requests in
    // progress equal, so it gets far fewer requests than either fast one.
    expect(slow).toBeLessThan(500);
    expect(slow).toBeLessThan(Math.min(r.counts['a'] ?? 0, r.counts['b'] ?? 0) / 2);
    expect((r.counts['a'] ?? 0) + (r.counts['b'] ?? 0) + slow).toBe(3000);
    table.push(`  least_conn (slow +200 ms) a=${r.counts['a']} b=${r.counts['b']} slow=${slow}`);
  });

  it('ip_hash: one client always lands on one server', async () => {
    const p = proxy('upstream app { ip_hash; server UP:8001; server UP:8002; server UP:8003; keepalive 8; } server { location / { proxy_pass http://app; } }');
    const r = await load(t, p.url, 3000, 16);
    expect(r.failures).toBe(0);
    expect(Object.values(r.counts)).toEqual([3000]);
    table.push(`  ip_hash              ${Object.entries(r.counts).map(([k, v]) => `${k}=${v}`).join(' ')} (one client)`);
  });

  it('hash $request_uri consistent: the same URL always lands on the same server', async () => {
    const p = proxy('upstream app { hash $request_uri consistent; server UP:8001; server UP:8002; server UP:8003; keepalive 8; } server { location / { proxy_pass http://app; } }');
    const r = await load(t, p.url, 3000, 16, 100);
    expect(r.failures).toBe(0);
    expect(Object.keys(r.paths)).toHaveLength(100);
    for (const names of Object.values(r.paths)) expect(names).toHaveLength(1);
    expect(Object.keys(r.counts).length).toBeGreaterThanOrEqual(2);
    table.push(`  url hash (100 URLs)  ${Object.entries(r.counts).sort().map(([k, v]) => `${k}=${v}`).join(' ')}; every URL on one server`);
  });

  it('an upstream killed in the middle of a wrk run costs no failed GET', async () => {
    const p = proxy('upstream app { server UP:8001; server UP:8002; server UP:8003; keepalive 8; } server { location / { proxy_pass http://app; } }');
    const run = wrk(t, `${p.url}/`, 4);
    await sleep(1500);
    await stop(ups.get('b')!);
    const r = await run;
    expect(r.requests).toBeGreaterThan(100);
    expect(r.non2xx, r.out).toBe(0);
    expect(r.errors, r.out).toBe(0);
    const b = p.app.describe().find((s) => s.server.endsWith(':8002'))!;
    expect(b.failures).toBeGreaterThan(0);
    await restart('b');
  });

  it('all upstreams killed: 502; back to 200 once they return and fail_timeout has passed', async () => {
    const p = proxy('upstream app { server UP:8001 fail_timeout=2s; server UP:8002 fail_timeout=2s; } server { location / { proxy_pass http://app; } }');
    const code = async () => (await t.exec(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', `${p.url}/`])).stdout;
    expect(await code()).toBe('200');
    await stop(ups.get('a')!);
    await stop(ups.get('b')!);
    expect(await code()).toBe('502');
    expect(await code()).toBe('502');
    await restart('a');
    await restart('b');
    await sleep(2500);
    expect(await code()).toBe('200');
  });

  it('a POST that reached an upstream is never sent to a second one', async () => {
    const p = proxy('upstream app { server UP:8001; server UP:8002; server UP:8003; } server { location / { proxy_pass http://app; } }');
    const counts = async () => {
      let posts = 0;
      for (const port of [8001, 8002, 8003]) {
        const r = await t.exec(['curl', '-s', '--max-time', '10', `http://${t.hostAddr}:${port}/_count`]);
        posts += (JSON.parse(r.stdout) as { posts: number }).posts;
      }
      return posts;
    };
    const before = await counts();
    const r = await t.exec(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '-X', 'POST', '--data', 'order=1', `${p.url}/reset`]);
    expect(r.stdout).toBe('502');
    expect((await counts()) - before).toBe(1);
  });

  it("our side of an upstream connection ends in TIME-WAIT when we close it (keepalive_timeout), and a Connection: close run leaves none here", async () => {
    const pooled = proxy('upstream app { server UP:8003; keepalive 4; keepalive_timeout 1s; } server { location / { proxy_pass http://app; } }');
    const r = await load(t, pooled.url, 20, 2);
    expect(r.counts).toEqual({ c: 20 });
    await sleep(2000);
    const ours = (port: number, state: string) => stack.connections().filter((c) => c.remote.endsWith(`:${port}`) && c.state === state).length;
    expect(ours(8003, 'TIME-WAIT')).toBeGreaterThanOrEqual(1);

    // Without a pool every request is a new upstream connection with Connection: close; the
    // server closes first, so the TIME-WAIT (and the port) stays on the kernel's side.
    // (Servers of their own, so no other test's connections are counted.)
    const extra = [await startUpstream(t, 8011, 'x'), await startUpstream(t, 8012, 'y')];
    try {
      const closing = proxy('upstream app { server UP:8011; server UP:8012; } server { location / { proxy_pass http://app; } }');
      const w = await wrk(t, `${closing.url}/`, 3, ['-H', 'Connection: close']);
      expect(w.requests).toBeGreaterThan(50);
      expect(w.non2xx + w.errors, w.out).toBe(0);
      await sleep(1000);
      expect(ours(8011, 'TIME-WAIT') + ours(8012, 'TIME-WAIT')).toBe(0);
      // One upstream connection per request, each closed first by the server: in TIME-WAIT
      // on the kernel's side (or still on its way there, if our FIN is in flight). Not one
      // entry per request: each connection takes a random port of the 16,384 ephemeral ones
      // (RFC 6056 §3.3.1), so some 4-tuples come round again while the kernel still holds
      // them in TIME-WAIT, and the kernel reuses that entry for the new SYN (RFC 6191). With
      // k connections to one upstream, the expected number of distinct tuples is
      // P·(1 − (1 − 1/P)^k): ~97% of k at 1,000 connections, ~83% at 6,000, so the bound
      // follows the request count (which depends on the machine's speed). Nine in ten of
      // that is far above what a side that kept its own TIME-WAITs (zero here) would show.
      const perUpstream = w.requests / 2; // round robin over two servers
      const distinct = 2 * EPHEMERAL_COUNT * (1 - Math.pow(1 - 1 / EPHEMERAL_COUNT, perUpstream));
      const ss = await t.exec(['ss', '-Htan', 'state', 'time-wait', 'state', 'fin-wait-1', 'state', 'fin-wait-2', '( sport = :8011 or sport = :8012 )']);
      expect(ss.stdout.trim().split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(Math.floor(distinct * 0.9));
    } finally {
      for (const c of extra) await stop(c);
    }
  });
});

describeInterop('netstack up --config as a process: a large download through the proxy', () => {
  let ns: Netns;
  let upstream: ChildProcess | undefined;
  beforeAll(async () => {
    ns = await createNetns();
  });
  afterAll(async () => {
    if (upstream) await stop(upstream);
  });

  it('256 MiB arrive intact with bounded memory; the start line names /_netstack/; one access-log line per request', async () => {
    // 256 MiB keeps CI fast; the 1 GiB check is the bench's (npm run bench) and the README's.
    const N = 256 << 20;
    upstream = await startUpstream(ns, 8001, 'big');
    const conf = join(dir, 'proxy.conf');
    writeFileSync(conf, 'upstream big { server 10.67.0.1:8001; keepalive 4; }\nserver {\n  listen 80;\n  location / { proxy_pass http://big; }\n}\n');
    const dev = `nspx${process.pid % 10000}`;
    const child = ns.spawn(
      [process.execPath, '--import', 'tsx', join(repo, 'src/cli/main.ts'), 'up', '--dev', dev, '--host', '10.67.0.1/24', '--addr', '10.67.0.2', '--config', conf, '--log-level', 'info'],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: repo },
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    try {
      for (let i = 0; i < 300 && !stdout.includes('/_netstack/'); i++) await sleep(100);
      expect(stdout).toContain('http://10.67.0.2/_netstack/');
      const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024;
      // Warm up (JIT, pools), then measure the growth over the big transfer.
      const warm = await ns.exec(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '30', 'http://10.67.0.2/bytes/8388608']);
      expect(warm.stdout).toBe('200');
      const base = rss();
      let peak = base;
      const sampler = setInterval(() => (peak = Math.max(peak, rss())), 100);
      const r = await ns.exec(['bash', '-o', 'pipefail', '-c', `curl -sS --max-time 120 http://10.67.0.2/bytes/${N} | sha256sum`], { timeoutMs: 150_000 });
      clearInterval(sampler);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.split(' ')[0]).toBe(patternHash(N));
      expect(peak - base).toBeLessThan(64 << 20);
      const status = await ns.exec(['curl', '-sS', '--max-time', '10', 'http://10.67.0.2/_netstack/metrics']);
      expect(status.stdout).toContain('netstack_upstream_requests_total{upstream="big",server="10.67.0.1:8001"} 2');
      const access = stderr.split('\n').filter((l) => l.includes('"msg":"access"') && l.includes('/bytes/'));
      expect(access).toHaveLength(2); // one line per request
      const big = access.find((l) => l.includes(`"uri":"/bytes/${N}"`));
      expect(big).toContain('"upstream":"10.67.0.1:8001"');
      expect(big).toContain('"status":200');
      expect(big).toContain(`"bytes":${N}`);
    } finally {
      child.kill('SIGINT');
      await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
    }
  });
});
