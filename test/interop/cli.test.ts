/**
 * `netstack up` as a user runs it: spawned as a process inside a fresh network namespace
 * (so the device and its addresses never touch the machine's own network), pinged by the
 * namespace's kernel, stopped with Ctrl-C. And every way of getting it wrong ends in one
 * clear sentence and a non-zero exit, never a stack trace.
 */
import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnInNs, waitForLine } from '../helpers/cli.js';
import { createNetns, describeInterop, run } from '../helpers/netns.js';
import type { ExecResult, Netns } from '../helpers/netns.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cliArgv = [process.execPath, '--import', 'tsx', join(repo, 'src/cli/main.ts')];
const dir = mkdtempSync(join(tmpdir(), 'netstack-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run the CLI to completion inside `ns` (optionally behind a wrapper like setpriv). */
function cli(ns: Netns, args: string[], wrapper: string[] = []): Promise<ExecResult> {
  return ns.exec([...wrapper, ...cliArgv, ...args], { timeoutMs: 30_000 });
}

/** The CLI failed the way a user should see it: exit 1, exactly one line, no trace. */
function expectOneLineError(r: ExecResult, sentence: string | RegExp): void {
  expect(r.timedOut, 'the CLI should have exited by itself').toBe(false);
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  if (typeof sentence === 'string') expect(lines[0]).toContain(sentence);
  else expect(lines[0]).toMatch(sentence);
  expect(r.stdout).not.toContain('netstack is up');
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.on('close', (code, signal) => resolve({ code, signal }));
  });
}

describeInterop('netstack up (the CLI in a namespace)', () => {
  let ns: Netns;
  beforeAll(async () => {
    ns = await createNetns();
  });

  it('comes up, answers ping, records a pcap, and on SIGINT exits 0 and removes the device', async () => {
    const pcapFile = join(dir, 'up.pcap');
    const dev = `nsup${process.pid % 10000}`;
    const { child, stderr: stderrOf } = spawnInNs(
      ns,
      [...cliArgv, 'up', '--dev', dev, '--host', '10.66.0.1/24', '--addr', '10.66.0.2', '--pcap', pcapFile],
      repo,
    );

    const ready = await waitForLine(child, /netstack is up/);
    expect(ready).toBe(`netstack is up: 10.66.0.2 on ${dev} (host 10.66.0.1/24). Try: ping 10.66.0.2  or  curl http://10.66.0.2/`);
    const shown = await ns.exec(['ip', '-4', 'addr', 'show', 'dev', dev]);
    expect(shown.stdout).toContain('inet 10.66.0.1/24');

    const ping = await ns.exec(['ping', '-c', '2', '-i', '0.2', '-W', '2', '-n', '10.66.0.2']);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    expect(ping.stdout).toContain('2 received');

    // The HTTP server runs on the stack's own TCP: the status page and the byte pattern.
    const page = await ns.exec(['curl', '-sS', '-m', '10', '-w', '\n%{http_code}', 'http://10.66.0.2/']);
    expect(page.code, page.stderr).toBe(0);
    expect(page.stdout).toContain('<h1>netstack</h1>');
    expect(page.stdout.trimEnd().endsWith('200')).toBe(true);
    const bytes = await ns.exec(['curl', '-sS', '-m', '10', 'http://10.66.0.2/bytes/1000']);
    expect(bytes.stdout.length).toBe(1000);

    // While it runs, the same device name is taken.
    const second = await cli(ns, ['up', '--dev', dev, '--host', '10.67.0.1/24', '--addr', '10.67.0.2']);
    expectOneLineError(second, `device name ${dev} is already in use`);

    child.kill('SIGINT');
    const exit = await exitOf(child);
    expect(exit, stderrOf()).toEqual({ code: 0, signal: null });
    expect(stderrOf()).toContain('shutting down'); // JSON log lines on stderr when not a TTY
    expect(stderrOf()).not.toMatch(/"level":(50|60)/); // no error or fatal lines
    const after = await ns.exec(['ip', 'link', 'show', dev]);
    expect(after.code, 'the device should be gone').not.toBe(0);

    const dump = spawnSync('tcpdump', ['-n', '-r', pcapFile, 'icmp'], { encoding: 'utf8', timeout: 10_000 });
    expect(dump.status, dump.stderr).toBe(0);
    expect(dump.stdout).toMatch(/10\.66\.0\.2 > 10\.66\.0\.1: ICMP echo reply/);
  });

  it('refuses a device name used by another kind of interface', async () => {
    // Every namespace has a loopback interface "lo", which is not a TUN device.
    const r = await cli(ns, ['up', '--dev', 'lo']);
    expectOneLineError(r, 'netstack: device name lo is already in use: pick another with --dev');
  });

  it('without CAP_NET_ADMIN says to run it as root', async () => {
    // Root without the capability...
    const noCap = await cli(ns, ['up', '--dev', 'nscap0'], ['setpriv', '--bounding-set=-net_admin', '--inh-caps=-net_admin']);
    expectOneLineError(noCap, 'netstack: netstack up needs CAP_NET_ADMIN: run it as root, e.g. sudo netstack up');
    // ...and an ordinary user (when the checkout is readable by one).
    let readable = true;
    try {
      accessSync(join(repo, 'src/cli/main.ts'), fsConstants.R_OK);
      const probe = await run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'test', '-r', join(repo, 'node_modules/tsx/package.json')]);
      readable = probe.code === 0;
    } catch {
      readable = false;
    }
    if (readable) {
      const nobody = await cli(ns, ['up', '--dev', 'nscap0'], ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
      expectOneLineError(nobody, 'netstack: netstack up needs CAP_NET_ADMIN: run it as root, e.g. sudo netstack up');
    } else {
      console.log('[interop] the checkout is not readable by uid 65534: checked the no-capability case only');
    }
  });

  it('without /dev/net/tun says how to get it', async () => {
    // A private mount namespace where /dev/net is an empty tmpfs. The script is a constant;
    // the command comes as positional arguments ("$@"), never spliced into the string.
    const r = await cli(ns, ['up', '--dev', 'nsnotun0'], [
      'unshare',
      '--mount',
      '--',
      'sh',
      '-c',
      'mount -t tmpfs tmpfs /dev/net && exec "$@"',
      'sh',
    ]);
    expectOneLineError(r, 'netstack: /dev/net/tun does not exist: load the tun module (sudo modprobe tun)');
  });

  it.each([
    [['up', '--host', '10.66.0.1/33'], '--host must be an IPv4 address with a prefix length 1..32'],
    [['up', '--host', 'ten.0.0.1/24'], '--host must be an IPv4 address with a prefix length 1..32'],
    [['up', '--addr', '10.66.0.300'], '--addr must be an IPv4 address like 10.77.0.2'],
    [['up', '--host', '10.66.0.1/24', '--addr', '10.67.0.2'], '--addr 10.67.0.2 is not inside the --host subnet 10.66.0.0/24'],
    [['up', '--host', '10.66.0.1/24', '--addr', '10.66.0.1'], '--addr 10.66.0.1 must differ from the --host address'],
    [['up', '--mtu', '67'], '--mtu must be an integer from 68 to 65535 (got "67")'],
    [['up', '--mtu', '65536'], '--mtu must be an integer from 68 to 65535 (got "65536")'],
    [['up', '--port', '0'], '--port must be an integer from 1 to 65535'],
    [['up', '--log-level', 'loud'], '--log-level must be one of fatal, error, warn, info, debug, trace, silent (got "loud")'],
    [['up', '--cc', 'bbr'], '--cc must be one of cubic, newreno (got "bbr")'],
    [['up', '--dev', 'much-too-long-name'], '--dev must be 1 to 15 characters'],
    [['up', '--max-orphans', 'lots'], '--max-orphans must be an integer from 0 to 999999 (got "lots")'],
    [['up', '--mem-limit', '0'], '--mem-limit must be an integer from 1 to 999999 (got "0")'],
    [['up', '--admin', '10.66.0.0/24', '--admin', '10.66.0.0/40'], '--admin must be an IPv4 network like 10.77.0.0/24 or one address like 10.77.0.5 (got "10.66.0.0/40")'],
    [['up', '--bogus'], 'Unknown argument: bogus (see netstack --help)'],
    [['up', '--mtu'], 'Not enough arguments following: mtu'],
    [[], 'name a command, e.g. netstack up'],
  ])('bad input %j: one sentence, exit 1', async (args, sentence) => {
    const r = await cli(ns, args);
    expectOneLineError(r, `netstack: ${sentence}`);
  });

  it('--help describes every option', async () => {
    const top = await cli(ns, ['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/netstack up\s+create a TUN \(or with --tap a TAP\) device/);
    const up = await cli(ns, ['up', '--help']);
    expect(up.code).toBe(0);
    for (const opt of ['--dev', '--host', '--addr', '--mtu', '--port', '--pcap', '--log-level', '--cc', '--tap', '--mac', '--admin', '--mem-limit', '--max-connections', '--max-time-wait', '--max-orphans', '--orphan-retries', '--syn-cookies']) {
      expect(up.stdout).toMatch(new RegExp(`^\\s+${opt}\\s+\\S`, 'm'));
    }
  });
});
