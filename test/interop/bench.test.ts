/**
 * `npm run bench` works: the quick version runs every workload against netstack and the
 * kernel peer and writes a JSON file with a number for each; and the harness deletes its
 * namespaces when it is interrupted. No thresholds: timing belongs to the benchmark itself.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { BenchResult, Peer } from '../../scripts/bench-report.js';
import { describeInterop, run } from '../helpers/netns.js';

const ROOT = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'netstack-bench-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const missingTools = ['wrk', 'curl', 'taskset', 'prlimit', 'nginx'].filter(
  (cmd) => spawnSync('which', [cmd], { encoding: 'utf8' }).status !== 0,
);
if (missingTools.length) console.log(`[bench] skipping: missing ${missingTools.join(', ')}`);

/** Bench namespaces that exist now. */
async function benchNamespaces(): Promise<string[]> {
  const r = await run(['ip', 'netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith('nsbench-'));
}

/** The PID of the bench process that owns namespace `nsbench-<pid>-<side>`. */
function ownerPid(ns: string): number {
  return Number(/^nsbench-(\d+)-/.exec(ns)?.[1] ?? NaN);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Namespaces left behind by benches that have ended: new since `before` and owned by a
 * process that no longer exists. Another bench running at the same time on the machine
 * (its owner alive) is not a leftover of ours.
 */
async function leftovers(before: string[]): Promise<string[]> {
  return (await benchNamespaces()).filter((n) => !before.includes(n) && !isAlive(ownerPid(n)));
}

const SIDE_BY_SIDE = [
  'bulk_download', 'bulk_upload', 'bulk_download_loss', 'keepalive', 'latency_p50', 'latency_p99', 'newconn', 'keepalive_small', 'newconn_small',
  // The reverse proxy: its "kernel" side is Debian's nginx.
  'proxy_keepalive', 'proxy_newconn',
];
const NETSTACK_ONLY = ['memory', 'memory_offload', 'scale_rss', 'scale_rss_burst', 'scale_heap', 'scale_connect_rate', 'timewait_heap', 'timewait_rate'];
/** Memory growth on both sides: may be zero or negative (memory given back), so no ratio check. */
const HOARDERS = ['hoarders_peak', 'hoarders_after'];

describeInterop('npm run bench', () => {
  it.skipIf(missingTools.length > 0)(
    '--quick measures every workload on both sides and writes the JSON',
    async () => {
      const before = await benchNamespaces();
      const out = join(dir, 'quick.json');
      const r = await run(['npm', 'run', '--silent', 'bench', '--', '--quick', '--out', out], { timeoutMs: 230_000 });
      expect(r.code, `bench failed:\n${r.stderr.slice(-3000)}`).toBe(0);

      const result = JSON.parse(readFileSync(out, 'utf8')) as BenchResult;
      expect(result.quick).toBe(true);
      expect(result.rounds).toBe(1);
      const byId = new Map(result.workloads.map((w) => [w.id, w]));
      expect([...byId.keys()].sort()).toEqual([...SIDE_BY_SIDE, ...NETSTACK_ONLY, ...HOARDERS].sort());
      for (const id of SIDE_BY_SIDE) {
        const w = byId.get(id)!;
        expect(w.netstack.errors, `${id} netstack`).toEqual({});
        expect(w.kernel?.errors, `${id} kernel`).toEqual({});
        for (const v of [w.netstack.median, w.kernel?.median, w.ratios?.[0]]) {
          expect(typeof v, id).toBe('number');
          expect(v! > 0 && Number.isFinite(v), `${id}: ${v}`).toBe(true);
        }
      }
      for (const id of NETSTACK_ONLY) {
        const w = byId.get(id)!;
        expect(w.netstack.errors, id).toEqual({});
        expect(w.kernel, id).toBeUndefined();
        expect(Number.isFinite(w.netstack.median), `${id}: ${w.netstack.median}`).toBe(true);
      }
      for (const id of HOARDERS) {
        const w = byId.get(id)!;
        expect(w.netstack.errors, `${id} netstack`).toEqual({});
        expect(w.kernel?.errors, `${id} kernel`).toEqual({});
        expect(Number.isFinite(w.netstack.median) && Number.isFinite(w.kernel?.median), `${id}: ${w.netstack.median} ${w.kernel?.median}`).toBe(true);
      }
      // Every hoarder connected and sent something.
      const hoarding = byId.get('hoarders_peak')!.netstack.details[0]!['hoarding'] as Record<string, number>;
      expect(hoarding['connected']).toBe(50);
      expect(hoarding['bytesSent']).toBeGreaterThan(0);
      // The reference servers measured beside them (lwIP only where it builds: liblwip-dev, gcc;
      // .ci/run installs both, so under CI=true lwIP is always expected).
      const lwip = process.env['CI'] === 'true' || (spawnSync('pkg-config', ['--exists', 'lwip']).status === 0 && spawnSync('which', ['gcc']).status === 0);
      for (const id of ['keepalive_small', 'newconn_small', 'bulk_download']) {
        const peers = byId.get(id)!.peers ?? {};
        const wanted: Peer[] = ['node_netstack', 'nginx', ...(lwip ? (['lwip'] as const) : [])];
        for (const p of wanted) {
          expect(peers[p]?.errors, `${id} ${p}`).toEqual({});
          expect(peers[p]!.median! > 0, `${id} ${p}: ${peers[p]?.median}`).toBe(true);
        }
      }
      // The per-connection memory comes from real connections, all of them held.
      expect(byId.get('scale_rss')!.netstack.details[0]!['connections']).toBe(1000);
      // The printed table names every workload.
      for (const w of result.workloads) expect(r.stdout).toContain(w.title);
      // Nothing left behind.
      expect(await leftovers(before)).toEqual([]);
    },
    240_000,
  );

  it.skipIf(missingTools.length > 0)(
    'deletes its namespaces and stops its servers on SIGINT',
    async () => {
      const before = await benchNamespaces();
      // tsx directly (not npm), so the signal reaches the bench; tsx relays it to its child.
      // A tag in the environment marks every process of this run (the bench passes its
      // environment on), so the leftover check below looks at ours only.
      const tag = `bench-sigint-${process.pid}-${Date.now()}`;
      const child = spawn(join(ROOT, 'node_modules/.bin/tsx'), ['scripts/bench.ts', '--quick', '--no-build', '--only', 'keepalive', '--out', join(dir, 'never.json')], {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, NETSTACK_BENCH_TEST_TAG: tag },
      });
      let stderr = '';
      child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        // Interrupt it in the middle of a measurement (bounded wait for it to get there).
        for (let i = 0; i < 300 && !stderr.includes('keepalive round 1 netstack') && child.exitCode === null; i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        // This run's two namespaces: those whose owner carries the tag (other benches may run too).
        const ours = new Set(pidsTagged(`NETSTACK_BENCH_TEST_TAG=${tag}`));
        const during = (await benchNamespaces()).filter((n) => ours.has(ownerPid(n)));
        expect(during, `bench never got going:\n${stderr}`).toHaveLength(2);
        child.kill('SIGINT');
        const code = await exited;
        expect(code).toBe(130);
        expect(stderr).toContain('SIGINT, cleaning up');
        const after = await benchNamespaces();
        expect(during.filter((n) => after.includes(n))).toEqual([]);
        expect(await leftovers(before)).toEqual([]);
        // Its processes ran in those namespaces; with the namespaces gone, none of them may be left.
        expect(processesTagged(`NETSTACK_BENCH_TEST_TAG=${tag}`)).toEqual([]);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
    90_000,
  );
});

/** PIDs of the live processes whose environment holds `entry` (from /proc). */
function pidsTagged(entry: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(entry)) found.push(Number(pid));
    } catch {
      // ended while we looked
    }
  }
  return found;
}

/** Command lines of the live processes whose environment holds `entry`. */
function processesTagged(entry: string): string[] {
  return pidsTagged(entry).flatMap((pid) => {
    try {
      return [readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ').trim()];
    } catch {
      return []; // ended while we looked
    }
  });
}
