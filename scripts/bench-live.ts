/**
 * `npm run bench:live`: what watching costs. `netstack up` (compiled, dist/) runs in a fresh
 * namespace pinned to core 0; wrk (pinned to core 1, same namespace) loads it with new
 * connections (`Connection: close`, GET /bytes/128, so every request is a handshake, a
 * close and a story for the watcher) and then with keep-alive requests. Three ways:
 *
 *   off       netstack up --no-live: no watcher at all
 *   watcher   the live view on (every segment recorded), nobody watching
 *   viewer    the same with one viewer: an event stream open with a story selected, as the
 *             page holds it (from the host side, so it receives the table and the story too)
 *
 * For each it reports requests/s and the stack process's CPU time per request (user + system,
 * from /proc/PID/stat), median of --rounds alternating rounds. The stack is saturated under
 * wrk, so CPU per request is the figure to compare.
 *
 *   npm run bench:live                 # 3 rounds of 10 s per mode and workload
 *   npm run bench:live -- --quick      # 1 round of 2 s: checks the script works
 *   npm run bench:live -- --sim        # in-process on the virtual clock (scripts/bench-live-sim.ts)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { simBench } from './bench-live-sim.js';
import { wrk } from './bench-tools.js';
import { cleanupNow, haveCommand, onCleanup, runOk, spawnTracked } from './netns.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = yargs(hideBin(process.argv))
  .scriptName('npm run bench:live --')
  .option('quick', { type: 'boolean', default: false, describe: 'one short round: checks that the script works' })
  .option('rounds', { type: 'number', describe: 'rounds (default 3, --quick 1)' })
  .option('seconds', { type: 'number', describe: 'wrk duration per run (default 10, --quick 2)' })
  .option('sim', { type: 'boolean', default: false, describe: 'measure in-process on the virtual clock instead (no root, no wrk)' })
  .strict()
  .help()
  .parseSync();
const rounds = argv.rounds ?? (argv.quick ? 1 : 3);
const seconds = argv.seconds ?? (argv.quick ? 2 : 10);

type Mode = 'off' | 'watcher' | 'viewer';
const MODES: Mode[] = ['off', 'watcher', 'viewer'];
const WORKLOADS = [
  { id: 'newconn', close: true },
  { id: 'keepalive', close: false },
] as const;

function fail(msg: string): never {
  process.stderr.write(`bench:live: ${msg}\n`);
  cleanupNow();
  process.exit(1);
}

/** CPU seconds (user + system) of a process so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of proc(5), counted from 1 with pid and comm as 1 and 2.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function waitForLine(child: ReturnType<typeof spawnTracked>, re: RegExp, ms: number): Promise<void> {
  await new Promise<void>((res, rej) => {
    let buf = '';
    const t = setTimeout(() => rej(new Error(`no ${re} within ${ms} ms: ${buf}`)), ms);
    child.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      if (re.test(buf)) {
        clearTimeout(t);
        res();
      }
    });
    child.once('exit', (code) => rej(new Error(`netstack up exited (${code}): ${buf}`)));
  });
}

async function measure(ns: string, mode: Mode, close: boolean): Promise<{ rps: number; usPerReq: number }> {
  const dev = `nsbl${process.pid % 10000}`;
  const up = spawnTracked(
    ['ip', 'netns', 'exec', ns, 'taskset', '-c', '0', process.execPath, join(ROOT, 'bin/netstack.js'), 'up', '--dev', dev,
      '--host', '10.72.0.1/24', '--addr', '10.72.0.2', '--log-level', 'warn', ...(mode === 'off' ? ['--no-live'] : [])],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await waitForLine(up, /netstack is up/, 30_000);
    let viewer: ReturnType<typeof spawnTracked> | undefined;
    if (mode === 'viewer') {
      // Open one connection first so the viewer has a story selected, as a person would.
      await runOk(['ip', 'netns', 'exec', ns, 'curl', '-sS', '-o', '/dev/null', 'http://10.72.0.2/bytes/1']);
      viewer = spawnTracked(['ip', 'netns', 'exec', ns, 'taskset', '-c', '1', 'curl', '-sSN', '-o', '/dev/null', 'http://10.72.0.2/live/events?story=1'], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 500));
    }
    const cpu0 = cpuSeconds(up.pid!);
    const r = await wrk(ns, 1, 'http://10.72.0.2/bytes/128', { connections: 50, seconds, close });
    const cpu = cpuSeconds(up.pid!) - cpu0;
    if (viewer && viewer.exitCode !== null) throw new Error('the viewer stream ended during the run');
    viewer?.kill('SIGTERM');
    const requests = r.requestsPerSecond * seconds;
    return { rps: r.requestsPerSecond, usPerReq: (cpu / requests) * 1e6 };
  } finally {
    up.kill('SIGINT');
    await new Promise((r) => up.once('exit', r));
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) fail('needs root (network namespaces and a TUN device)');
  for (const c of ['wrk', 'curl', 'taskset', 'ip']) if (!haveCommand(c)) fail(`${c} is not installed`);
  const ns = `nsbench-live-${process.pid}`;
  await runOk(['ip', 'netns', 'add', ns]);
  onCleanup(`namespace ${ns}`, () => void spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 }));
  await runOk(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  const results: Record<string, Record<Mode, Array<{ rps: number; usPerReq: number }>>> = {};
  for (const w of WORKLOADS) {
    results[w.id] = { off: [], watcher: [], viewer: [] };
    for (let i = 0; i < rounds; i++) {
      for (const mode of MODES) {
        const r = await measure(ns, mode, w.close);
        results[w.id]![mode].push(r);
        process.stderr.write(`${w.id} ${mode} round ${i + 1}: ${r.rps.toFixed(0)} req/s, ${r.usPerReq.toFixed(1)} µs CPU/req\n`);
      }
    }
  }
  console.log(`\nwrk -t1 -c50 -d${seconds}s GET /bytes/128, median of ${rounds} round(s); stack on core 0, wrk on core 1`);
  console.log('workload    mode      req/s     µs CPU/req   vs off');
  for (const w of WORKLOADS) {
    const base = median(results[w.id]!.off.map((r) => r.usPerReq));
    for (const mode of MODES) {
      const rs = results[w.id]![mode];
      const us = median(rs.map((r) => r.usPerReq));
      const rel = mode === 'off' ? '' : `${us >= base ? '+' : ''}${(((us - base) / base) * 100).toFixed(1)}%`;
      console.log(`${w.id.padEnd(11)} ${mode.padEnd(8)} ${median(rs.map((r) => r.rps)).toFixed(0).padStart(7)}   ${us.toFixed(1).padStart(10)}   ${rel}`);
    }
  }
  cleanupNow();
}

if (argv.sim) {
  simBench(rounds, argv.quick ? 300 : 3000, argv.quick ? 1 : 5).then(
    () => process.exit(0),
    (e: unknown) => fail((e as Error).message),
  );
} else main().catch((e: unknown) => fail((e as Error).message));
