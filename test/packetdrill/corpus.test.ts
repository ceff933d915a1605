/**
 * Every packetdrill script under test/packetdrill/ is one test, run by the same runner as
 * `netstack packetdrill` (src/packetdrill). A script the runner skips is reported as skipped
 * with its reason, never as passed. A script that exposes a known bug in netstack says so in a
 * header line `// expect-fail: <why>` and runs as an expected failure: it is reported with the
 * reason, and turns red the day it starts passing (then the line must go).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runScript } from '../../src/packetdrill/runner.js';

const DIR = fileURLToPath(new URL('.', import.meta.url));

export function scripts(dir = DIR): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...scripts(p));
    else if (e.name.endsWith('.pkt')) out.push(p);
  }
  return out.sort();
}

/** The `// expect-fail: reason` header of a script, if any. */
export function expectedFailure(source: string): string | undefined {
  return /^\/\/\s*expect-fail:\s*(.+)$/m.exec(source)?.[1]?.trim();
}

const files = scripts();

describe('packetdrill corpus (test/packetdrill/**/*.pkt)', () => {
  it('holds at least 80 scripts in the groups Linux uses', () => {
    expect(files.length).toBeGreaterThanOrEqual(80);
    const groups = new Set(files.map((f) => relative(DIR, f).split('/')[0]));
    for (const g of ['close', 'shutdown', 'blocking', 'mss', 'nagle', 'delayed_ack', 'zero_window', 'fast_retransmit', 'rto', 'reset', 'rfc5961', 'time_wait', 'listen', 'keepalive', 'urgent', 'window_scale']) {
      expect(groups, g).toContain(g);
    }
  });

  for (const file of files) {
    const name = relative(DIR, file);
    const source = readFileSync(file, 'utf8');
    const known = expectedFailure(source);
    if (known) {
      it.fails(`${name} (expected failure, known bug: ${known})`, async () => {
        const r = await runScript(source);
        // Only a FAIL counts as the expected failure; a pass or a skip makes this test red.
        if (r.status === 'fail') throw new Error(r.reason);
      });
    } else {
      it(name, async (ctx) => {
        const r = await runScript(source);
        if (r.status === 'skip') ctx.skip(r.reason);
        if (r.status === 'fail') throw new Error(`FAIL ${name} — ${r.reason}`);
      });
    }
  }
});
