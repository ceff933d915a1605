/**
 * `netstack up` under hostile traffic from its own link, with the Linux kernel of a fresh
 * namespace as the attacker's machine:
 *
 * - a 3-second SYN flood from random sources (`hping3 --flood -S --rand-source`): a client that
 *   keeps retrying gets through during it, one curl succeeds within a second after it, and the
 *   process's RSS does not grow by more than 50 MB (SYN cookies once the SYN queue is full);
 * - a second address on the link reading `/connections` and `/` sees counts only: no sequence
 *   numbers and no other client's 4-tuple (those are for the --host address and --admin).
 *
 * All traffic stays inside the namespace: hping3's random sources are on the TUN, and the
 * stack's answers to them go back into the namespace's kernel, which does not forward them.
 */
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it, onTestFinished } from 'vitest';
import { createNetns, describeInterop } from '../helpers/netns.js';
import type { Netns } from '../helpers/netns.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cliArgv = [process.execPath, '--import', 'tsx', join(repo, 'src/cli/main.ts')];

interface Up {
  ns: Netns;
  child: ChildProcess;
  pid: number;
  host: string;
  addr: string;
  dev: string;
  stderr(): string;
}

/** `netstack up` in a fresh namespace on 10.<n>.0.0/24, until the test ends. */
async function up(n: number, extra: string[] = []): Promise<Up> {
  const ns = await createNetns();
  const host = `10.${n}.0.1`;
  const addr = `10.${n}.0.2`;
  const dev = `nsh${process.pid % 10000}x${n}`;
  const child = ns.spawn([...cliArgv, 'up', '--dev', dev, '--host', `${host}/24`, '--addr', addr, '--log-level', 'warn', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: repo,
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 5000);
        child.on('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`netstack up did not come up within 30 s: ${out} ${stderr}`)), 30_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('netstack is up')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`netstack up exited with ${code}: ${stderr}`));
    });
  });
  return { ns, child, pid: child.pid!, host, addr, dev, stderr: () => stderr };
}

/** Resident set size of a process, bytes. */
function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

async function curlOnce(u: Up, url: string, maxTime: number, extra: string[] = []) {
  return u.ns.exec(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', String(maxTime), ...extra, url], {
    timeoutMs: (maxTime + 5) * 1000,
  });
}

describeInterop('netstack up under hostile traffic', () => {
  it('a second address on the link sees connection counts, but no sequence numbers and no other client', async () => {
    const u = await up(201);
    const stranger = `10.201.0.7`;
    await u.ns.exec(['ip', 'addr', 'add', `${stranger}/24`, 'dev', `nsh${process.pid % 10000}x201`]);
    // A victim on the host address holds a connection open: a slow download it reads at 10 KB/s.
    const victim = u.ns.spawn(['curl', '-sS', '-o', '/dev/null', '--limit-rate', '10k', '--max-time', '20', `http://${u.addr}/bytes/10000000`], {
      stdio: 'ignore',
    });
    onTestFinished(() => {
      if (victim.exitCode === null) victim.kill('SIGKILL');
    });
    // The host side (the default admin) sees the victim's connection with its numbers...
    let admin: { total: number; connections?: Array<{ remote: string; sndNxt: number }> } = { total: 0 };
    for (let i = 0; i < 50 && !admin.connections?.some((c) => c.remote.startsWith(`${u.host}:`) && c.sndNxt > 0); i++) {
      const r = await u.ns.exec(['curl', '-sS', '--max-time', '5', `http://${u.addr}/connections`]);
      admin = JSON.parse(r.stdout);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(admin.connections?.some((c) => c.remote.startsWith(`${u.host}:`))).toBe(true);

    // ...the second address sees counts only.
    const json = await u.ns.exec(['curl', '-sS', '--max-time', '5', '--interface', stranger, `http://${u.addr}/connections`]);
    expect(json.code, json.stderr).toBe(0);
    const page = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(page['total']).toBeGreaterThanOrEqual(2);
    expect(page['connections']).toBeUndefined();
    expect(json.stdout).not.toContain(u.host);
    expect(json.stdout).not.toMatch(/snd|rcv/i);
    const html = await u.ns.exec(['curl', '-sS', '--max-time', '5', '--interface', stranger, `http://${u.addr}/`]);
    expect(html.stdout).toContain('<h1>netstack</h1>');
    expect(html.stdout).not.toContain(`${u.host}:`);
    expect(html.stdout).not.toContain(`${stranger}:`); // not even its own 4-tuple
    expect(html.stdout).not.toContain('<th>sndNxt</th><td>');
  });

  it('a 3-second SYN flood from random sources: a retrying client gets through, curl works within 1 s after, RSS grows < 50 MB', async () => {
    const u = await up(202);
    const url = `http://${u.addr}/bytes/100`;
    expect((await curlOnce(u, url, 5)).stdout).toBe('200');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const rssBefore = rss(u.pid);

    const flood = u.ns.spawn(['timeout', '-s', 'INT', '3', 'hping3', '--flood', '-q', '-S', '-p', '80', '--rand-source', u.addr], {
      stdio: 'ignore',
    });
    onTestFinished(() => {
      if (flood.exitCode === null) flood.kill('SIGKILL');
    });
    const floodDone = new Promise<void>((resolve) => flood.on('close', () => resolve()));
    let flooding = true;
    void floodDone.then(() => (flooding = false));
    await new Promise((resolve) => setTimeout(resolve, 100));

    // During the flood: a client that keeps trying, starting while the flood is on, gets an
    // answer. Each try has 3 s: its SYN may be lost in the device queue the flood fills, and the
    // kernel sends it again after 1 s. (Without cookies the SYN queue stays full for a minute
    // after the flood, so a try that ends just after it would fail too.)
    // Several clients, started 250 ms apart: on this machine the flood overflows the device's
    // queue (over half of all packets to the stack are dropped by the kernel before we can read
    // them), so any one client's SYN, its retransmission or its request may be lost there; the
    // stack's part is to answer every SYN that reaches it.
    const tries = await Promise.all(
      [0, 250, 500, 750].map(async (delay) => {
        await new Promise((resolve) => setTimeout(resolve, delay));
        return flooding ? (await curlOnce(u, url, 3)).stdout : 'flood over';
      }),
    );
    const attempts = tries.filter((t) => t !== 'flood over').length;
    const during = tries.filter((t) => t === '200').length;
    await floodDone;
    const diag = async () => {
      const m = await u.ns.exec(['curl', '-sS', '--max-time', '5', `http://${u.addr}/metrics`]);
      const link = await u.ns.exec(['ip', '-s', 'link', 'show', 'dev', u.dev]);
      const keep = m.stdout.split('\n').filter((l) => /syncookies|syn_dropped|listen|rst_limited|tcp_in_total|packets_in/.test(l) && !l.startsWith('#'));
      return `${keep.join('; ')}\n${link.stdout}`;
    };
    expect(during, `answers during the flood, of ${attempts} attempts; ${await diag()}`).toBeGreaterThan(0);

    // Right after: one curl, at most 1 s.
    const after = await curlOnce(u, url, 1);
    expect(after.stdout, after.stderr).toBe('200');

    const grown = rss(u.pid) - rssBefore;
    expect(grown, `RSS grew by ${(grown / 2 ** 20).toFixed(1)} MB`).toBeLessThan(50 * 2 ** 20);

    const metrics = await u.ns.exec(['curl', '-sS', '--max-time', '5', `http://${u.addr}/metrics`]);
    const counter = (name: string) => Number(new RegExp(`^netstack_${name}_total (\\d+)$`, 'm').exec(metrics.stdout)?.[1] ?? 0);
    console.log(
      `[hostile] flood: ${counter('tcp_in')} segments in, ${counter('tcp_syncookies_sent')} cookies sent, ` +
        `${counter('tcp_syncookies_accepted')} accepted; ${during} of ${attempts} tries answered during it; RSS +${(grown / 2 ** 20).toFixed(1)} MB`,
    );
    expect(counter('tcp_syncookies_sent')).toBeGreaterThan(0);
    expect(u.stderr()).not.toMatch(/"level":(50|60)/);
  });
});
