/**
 * The live view in a real browser: `netstack up` runs in a fresh namespace, Debian's
 * chromium (headless, driven by playwright-core, started inside the same namespace through
 * `ip netns exec`) opens http://ADDR/ on the host side, and the namespace's kernel runs curl.
 * The page must show the new connection, the diagram's counts must go up, and clicking the
 * connection must show its ladder (SYN, SYN-ACK, ACK, the request, the FIN exchange) and its
 * graphs, without console errors. Screenshots go to test-artifacts/browser/.
 * `netstack trace` and the details rule (other addresses see counts only) are checked here too.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createNetns, describeInterop } from '../helpers/netns.js';
import type { Netns } from '../helpers/netns.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cliArgv = [process.execPath, '--import', 'tsx', join(repo, 'src/cli/main.ts')];
const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
const artifacts = join(repo, 'test-artifacts', 'browser');
const HOST = '10.71.0.1';
const ADDR = '10.71.0.2';
const OTHER = '10.71.0.3'; // a second kernel address in the namespace: not the host side

/** Wait (bounded) for a line matching `re` on the child's stream. */
function waitForOutput(child: ChildProcess, stream: 'stdout' | 'stderr', re: RegExp, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no ${re} within ${timeoutMs} ms; got: ${buf}`)), timeoutMs);
    child[stream]!.on('data', (b: Buffer) => {
      buf += b.toString();
      const m = buf.split('\n').find((l) => re.test(l));
      if (m !== undefined) {
        clearTimeout(timer);
        resolve(buf);
      }
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGINT');
  });
}

describeInterop('the live view in headless chromium', () => {
  let ns: Netns;
  let up: ChildProcess;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'netstack-browser-'));

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
    mkdirSync(artifacts, { recursive: true });
    ns = await createNetns();
    const dev = `nslv${process.pid % 10000}`;
    up = ns.spawn([...cliArgv, 'up', '--dev', dev, '--host', `${HOST}/24`, '--addr', ADDR, '--log-level', 'warn']);
    await waitForOutput(up, 'stdout', /netstack is up/);
    await ns.exec(['ip', 'addr', 'add', `${OTHER}/24`, 'dev', dev]);
    // chromium inside the namespace: playwright talks to it over a pipe (fds 3 and 4), which
    // `ip netns exec` passes through.
    const wrapper = join(dir, 'chromium-in-netns');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns.ns} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    browser = await chromium.launch({ executablePath: wrapper, args: ['--no-sandbox', '--disable-gpu'], timeout: 30_000 });
    page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    if (up) await stopChild(up);
    await ns?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const count = (sel: string) => page.locator(sel).textContent().then((t) => Number(t));

  it('shows a kernel curl as it happens: diagram counts, the table row, its ladder and graphs', async () => {
    await page.goto(`http://${ADDR}/`);
    await page.locator('#live.on').waitFor({ timeout: 10_000 });
    const arrow = '#diagram [data-arrow="LISTEN>SYN-RECEIVED"] .count';
    const before = await count(arrow);
    // The browser's own connections were counted already.
    expect(before).toBeGreaterThanOrEqual(1);

    const curl = await ns.exec(['curl', '-sS', '-m', '10', '-o', '/dev/null', '-w', '%{local_port}', '--data-binary', 'hello, stack', `http://${ADDR}/echo`]);
    expect(curl.code, curl.stderr).toBe(0);
    const remote = `${HOST}:${curl.stdout.trim()}`;

    await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel as string)?.textContent) > (n as number), [arrow, before], { timeout: 10_000 });
    // The handshake's last arrow may reach the page in a later update than its first one.
    const established = '#diagram [data-arrow="SYN-RECEIVED>ESTABLISHED"] .count';
    await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel as string)?.textContent) >= (n as number), [established, before + 1], { timeout: 10_000 });
    expect(await count(established)).toBeGreaterThanOrEqual(before + 1);
    const row = page.locator('#conns tbody tr', { hasText: remote });
    await row.waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(artifacts, 'live-view-overview.png'), fullPage: false });

    await row.click();
    const ladder = page.locator('#ladder-text');
    await page.waitForFunction(() => /F/.test(document.querySelector('#ladder-text')?.textContent ?? '') && document.querySelectorAll('#ladder svg g').length > 0, null, { timeout: 10_000 });
    const text = (await ladder.textContent()) ?? '';
    const segments = text.split('\n').filter((l) => /──▶|◀──/.test(l));
    // The handshake, the request (the POST's head and body) and the close, relative numbers.
    expect(segments[0]).toMatch(/SYN-SENT +S 0:0\(0\) win \d+ <mss \d+.*──▶ +SYN-RECEIVED/);
    expect(segments[1]).toMatch(/◀── S\. 0:0\(0\) ack 1 win \d+ <mss \d+/);
    expect(segments[2]).toMatch(/ESTABLISHED +\. 1:1\(0\) ack 1 win \d+ ──▶ +ESTABLISHED/);
    expect(segments.some((l) => /P\. 1:\d+\(\d+\) ack 1 .*──▶/.test(l))).toBe(true);
    expect(segments.some((l) => /F\.? .*──▶/.test(l)), text).toBe(true);
    expect(segments.some((l) => /◀── F/.test(l) || /◀── FP/.test(l)), text).toBe(true);
    expect(text).toContain('CLOSED → SYN-RECEIVED (SYN to listener :80)');
    // The drawing has an arrow per segment, and the graphs drew something.
    expect(await page.locator('#ladder svg g line').count()).toBe(segments.length);
    expect(await page.locator('#g-tseq svg path').count()).toBeGreaterThan(0);
    expect(await page.locator('#g-rtt svg path').count()).toBeGreaterThan(0);
    await page.locator('#story').screenshot({ path: join(artifacts, 'live-view-story.png') });
    // The README's picture: the diagram, the table and the ladder in one laptop-sized view.
    await page.setViewportSize({ width: 1440, height: 1280 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(artifacts, 'live-view.png') });
    await page.setViewportSize({ width: 1440, height: 1000 });
    await page.screenshot({ path: join(artifacts, 'live-view-full.png'), fullPage: true });

    // Sorting by state puts the table in order.
    await page.locator('#conns th button[data-sort="state"]').click();
    await page.locator('#conns th[aria-sort="ascending"] button[data-sort="state"]').waitFor({ timeout: 10_000 });
    await page.waitForFunction(() => {
      const states = [...document.querySelectorAll('#conns tbody tr td:nth-child(2)')].map((td) => td.textContent ?? '');
      return states.length > 1 && states.every((s, i) => i === 0 || states[i - 1]! <= s);
    }, null, { timeout: 10_000 });
    expect(consoleErrors).toEqual([]);
  });

  it('shows other addresses the counts only: no 4-tuples, no stories, no trace', async () => {
    const pageAsOther = await ns.exec(['curl', '-sS', '-m', '10', '--interface', OTHER, `http://${ADDR}/`]);
    expect(pageAsOther.code, pageAsOther.stderr).toBe(0);
    expect(pageAsOther.stdout).toContain('<h1>netstack</h1>');
    expect(pageAsOther.stdout).toContain('data-arrow="LISTEN&gt;SYN-RECEIVED"'.replace('&gt;', '>'));
    expect(pageAsOther.stdout).not.toContain(`${HOST}:`);
    expect(pageAsOther.stdout).toContain('shown to the host side of the link (10.71.0.1)');
    const trace = await ns.exec(['curl', '-sS', '-m', '10', '-w', '%{http_code}', '-o', '/dev/null', '--interface', OTHER, `http://${ADDR}/live/trace`]);
    expect(trace.stdout).toBe('403');
    const story = await ns.exec(['curl', '-sS', '-m', '10', '-w', '%{http_code}', '-o', '/dev/null', '--interface', OTHER, `http://${ADDR}/live/story/1.txt`]);
    expect(story.stdout).toBe('403');
    // The host side reads the same page with the table, and a story as text.
    const asHost = await ns.exec(['curl', '-sS', '-m', '10', `http://${ADDR}/live/story/1.txt`]);
    expect(asHost.stdout).toMatch(/S 0:0\(0\) win \d+/);
  });

  it('netstack trace prints each transition of a kernel curl, and with -v each segment', async () => {
    const trace = ns.spawn([...cliArgv, 'trace', '--addr', ADDR, '-v']);
    try {
      await waitForOutput(trace, 'stderr', /transitions and segments as they happen/, 20_000);
      const curl = await ns.exec(['curl', '-sS', '-m', '10', '-o', '/dev/null', '-w', '%{local_port}', `http://${ADDR}/bytes/10`]);
      expect(curl.code, curl.stderr).toBe(0);
      const conn = `${HOST}:${curl.stdout.trim()} > ${ADDR}:80`;
      const out = await waitForOutput(trace, 'stdout', new RegExp(`${conn.replace(/\./g, '\\.')}  (CLOSE-WAIT -> LAST-ACK|FIN-WAIT-2 -> TIME-WAIT)`), 20_000);
      const lines = out.split('\n').filter((l) => l.includes(conn));
      expect(lines.find((l) => / < S \d+:\d+\(0\) win/.test(l)), out).toBeDefined();
      expect(lines.find((l) => / > S\. \d+:\d+\(0\) ack \d+/.test(l)), out).toBeDefined();
      expect(lines.find((l) => l.endsWith('CLOSED -> SYN-RECEIVED  (SYN to listener :80)')), out).toBeDefined();
      expect(lines.find((l) => l.endsWith('SYN-RECEIVED -> ESTABLISHED  (ACK of our SYN)')), out).toBeDefined();
      // The trace's own segments are not traced (each line would make more): once the curl is
      // done, the only lines left are the open page's few (its event stream).
      let later = 0;
      trace.stdout!.on('data', (b: Buffer) => (later += b.toString().split('\n').length - 1));
      await new Promise((r) => setTimeout(r, 1000));
      expect(later).toBeLessThan(50);
    } finally {
      await stopChild(trace);
    }
  });
});
