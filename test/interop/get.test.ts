/**
 * `netstack get` as a user runs it, in a fresh namespace: against a Node HTTP server and
 * dnsmasq on the kernel side (body intact, the timeline complete and in order), against a
 * `netstack up --dns` routed through the kernel (stack to stack), and every way it fails
 * (a malformed response among them) ending in one sentence.
 */
import { createHash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest';
import { createNetns, describeInterop } from '../helpers/netns.js';
import type { ExecResult, Netns } from '../helpers/netns.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cliArgv = [process.execPath, '--import', 'tsx', join(repo, 'src/cli/main.ts')];
const dir = mkdtempSync(join(tmpdir(), 'netstack-get-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BODY_BYTES = 1 << 20;

/**
 * A Node HTTP server serving a fixed 1 MiB body at any path, on every address of the namespace,
 * and on port 8002 a raw TCP server answering with a response framed two ways (smuggling).
 */
const SERVER = `
const http = require('http');
const net = require('net');
const body = Buffer.alloc(${BODY_BYTES});
for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 8)) & 255;
let ready = 0;
const up = () => { if (++ready === 2) console.log('listening'); };
http.createServer((req, res) => { res.setHeader('Content-Length', body.length); res.end(body); })
  .listen(8000, '0.0.0.0', up);
net.createServer((s) => { s.on('error', () => {}); s.once('data', () => s.end('HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n')); })
  .listen(8002, '0.0.0.0', up);
`;

function expectedSha(): string {
  const body = Buffer.alloc(BODY_BYTES);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 8)) & 255;
  return createHash('sha256').update(body).digest('hex');
}

function spawnIn(ns: Netns, cmd: string[]): ChildProcess {
  const child = ns.spawn(cmd, { stdio: ['ignore', 'pipe', 'pipe'], cwd: repo });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${re}; got: ${buf}`)), timeoutMs);
    child.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      if (re.test(buf)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function get(ns: Netns, args: string[]): Promise<ExecResult> {
  return ns.exec([...cliArgv, 'get', ...args], { timeoutMs: 60_000 });
}

interface JsonEvent {
  n: number;
  t_ms: number;
  layer: string;
  what: string;
  transitions: string[];
  dir?: string;
  flags?: string;
  dns?: string;
  http?: string;
}

/** Index of the first event after `from` matching `pred`, or -1. */
function find(events: JsonEvent[], from: number, pred: (e: JsonEvent) => boolean): number {
  for (let i = from + 1; i < events.length; i++) if (pred(events[i]!)) return i;
  return -1;
}

describeInterop('netstack get (the journey of a request)', () => {
  let ns: Netns;
  let server: ChildProcess;

  beforeAll(async () => {
    ns = await createNetns();
    server = ns.spawn(['node', '-e', SERVER], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitForLine(server, /listening/);
  });
  afterAll(() => {
    server?.kill('SIGKILL');
  });

  it('fetches through DNS (dnsmasq) and TCP: body intact, timeline complete and in order', async () => {
    spawnIn(ns, [
      'dnsmasq',
      '--keep-in-foreground',
      '--no-resolv',
      '--no-hosts',
      '--conf-file=/dev/null',
      // netstack get creates netstack1 (10.78.0.1) after dnsmasq starts: listen as it appears.
      '--bind-dynamic',
      '--listen-address=10.78.0.1',
      '--local=/test/',
      '--address=/web.test/10.78.0.1',
      '--pid-file=',
    ]);
    const out = join(dir, 'file');
    const r = await get(ns, ['--json', '--resolver', '10.78.0.1', '-o', out, 'http://web.test:8000/file']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(createHash('sha256').update(readFileSync(out)).digest('hex')).toBe(expectedSha());
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as JsonEvent);
    expect(events.map((e) => e.n)).toEqual(events.map((_, i) => i + 1));

    // The journey, in this order (retries and other lines may sit between the steps).
    const query = find(events, -1, (e) => e.dns === 'query');
    const answer = find(events, query, (e) => e.dns === 'answer');
    const syn = find(events, answer, (e) => e.dir === 'out' && e.flags === 'SYN');
    const synAck = find(events, syn, (e) => e.dir === 'in' && e.flags === 'SYN-ACK');
    const ack = find(events, synAck, (e) => e.dir === 'out' && e.flags === 'ACK');
    const request = find(events, ack, (e) => e.http === 'request');
    const response = find(events, request, (e) => e.http === 'response');
    const body = find(events, response, (e) => e.http === 'body');
    const ourFin = find(events, body, (e) => e.dir === 'out' && e.flags === 'FIN-ACK');
    const theirFin = find(events, ourFin, (e) => e.dir === 'in' && e.flags === 'FIN-ACK');
    const lastAck = find(events, theirFin, (e) => e.dir === 'out' && e.flags === 'ACK');
    const steps = { query, answer, syn, synAck, ack, request, response, body, ourFin, theirFin, lastAck };
    for (const [name, i] of Object.entries(steps)) expect(i, `${name} missing or out of order in:\n${r.stdout}`).toBeGreaterThanOrEqual(0);

    expect(events[answer]!.what).toBe('answer web.test A 10.78.0.1  TTL 0');
    expect(events[syn]!.transitions).toEqual(['CLOSED → SYN-SENT']);
    expect(events[synAck]!.transitions).toEqual(['SYN-SENT → ESTABLISHED']);
    expect(events[request]!.what).toMatch(/^→ GET \/file HTTP\/1\.1 {2}Host: web\.test:8000/);
    expect(events[response]!.what).toBe(`← HTTP/1.1 200 OK  Content-Length: ${BODY_BYTES}`);
    expect(events[body]!.what).toMatch(new RegExp(`^body complete: ${BODY_BYTES} bytes in \\d+ segments$`));
    expect(events[ourFin]!.transitions).toEqual(['ESTABLISHED → FIN-WAIT-1']);
    // The kernel's FIN may come with the ACK of ours or after it.
    expect(events.slice(ourFin + 1, lastAck).flatMap((e) => e.transitions).join(', ')).toMatch(/FIN-WAIT-2 → TIME-WAIT|CLOSING → TIME-WAIT/);
    expect(events.at(-1)!.what).toMatch(/^TIME-WAIT/);
    // Times never go backwards.
    for (let i = 1; i < events.length; i++) expect(events[i]!.t_ms).toBeGreaterThanOrEqual(events[i - 1]!.t_ms);
  });

  it('an IP literal skips DNS; the timeline goes to stderr and the body to stdout', async () => {
    const r = await get(ns, ['http://10.78.0.1:8000/x']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.length).toBe(BODY_BYTES);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\s+#\s+time\s+layer\s+what$/);
    expect(r.stderr).not.toMatch(/\bDNS\b/);
    expect(lines[1]).toMatch(/^\s+1\s+0\.00 ms\s+TCP\s+→ SYN\s+seq=\d+\s+CLOSED → SYN-SENT$/);
  });

  it('stack to stack: netstack get asks netstack up --dns for netstack.test, routed through the kernel', async () => {
    await ns.exec(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    const dev = `nsdns${process.pid % 10000}`;
    const up = spawnIn(ns, [...cliArgv, 'up', '--dns', '--dev', dev, '--host', '10.77.0.1/24', '--addr', '10.77.0.2', '--log-level', 'warn']);
    await waitForLine(up, /netstack is up/);
    const r = await get(ns, ['--resolver', '10.77.0.2', 'http://netstack.test/']);
    const metrics = await get(ns, ['http://10.77.0.2/metrics']);
    up.kill('SIGINT');
    // The DNS server's counters are on /metrics beside the stack's.
    expect(metrics.stdout).toMatch(/^netstack_dns_server_queries_udp_total [1-9]\d*$/m);
    expect(metrics.stdout).toMatch(/^netstack_dns_server_answered_total [1-9]\d*$/m);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('<h1>netstack</h1>');
    expect(r.stderr).toMatch(/DNS\s+query {2}A netstack\.test {2}→ {2}10\.77\.0\.2:53 {2}\(UDP 10\.78\.0\.2:\d+, id 0x[0-9a-f]{4}\)/);
    expect(r.stderr).toMatch(/DNS\s+answer netstack\.test A 10\.77\.0\.2 {2}TTL 300/);
    expect(r.stderr).toMatch(/HTTP\s+← HTTP\/1\.1 200 OK/);
    expect(r.stderr).toMatch(/TIME-WAIT|LAST-ACK → CLOSED/);
  });

  it.each([
    // (URL and option mistakes, https:// among them, are checked without a device: test/unit/get.test.ts.)
    [['--resolver', '10.78.0.1', '--timeout', '5', 'http://nothere.test:8000/'], 'netstack: nothere.test: name not found (the DNS server 10.78.0.1 answered NXDOMAIN)'],
    [['--timeout', '5', 'http://10.78.0.1:8001/'], 'netstack: connection refused by 10.78.0.1:8001: nothing listens there'],
    [['--resolver', '10.78.0.77', '--timeout', '1.5', 'http://web.test/'], 'netstack: timed out after 1.5 s waiting for the DNS answer'],
    [['--timeout', '5', 'http://10.78.0.1:8002/'], 'netstack: bad response from 10.78.0.1:8002: the response has both Content-Length and Transfer-Encoding'],
  ])('fails with one sentence: %j', async (args, sentence) => {
    // A dnsmasq that knows nothing under .test, for the NXDOMAIN case.
    spawnIn(ns, ['dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--conf-file=/dev/null', '--bind-dynamic', '--listen-address=10.78.0.1', '--local=/test/', '--pid-file=']);
    const r = await get(ns, args);
    expect(r.timedOut).toBe(false);
    expect(r.code, r.stderr).toBe(1);
    const errLines = r.stderr.split('\n').filter((l) => l.startsWith('netstack: '));
    expect(errLines, r.stderr).toEqual([sentence]);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });
});

