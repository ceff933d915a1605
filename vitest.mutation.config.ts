import { defineConfig } from 'vitest/config';
import type { TestSpecification } from 'vitest/node';
import { BaseSequencer } from 'vitest/node';

// The tests that can see a mutant in src/tcp, src/ip or the HTTP parser without root: unit,
// simulation and packetdrill. (The interop suites need root and a kernel peer, and the wire fuzz
// takes minutes per run under instrumentation; npm test runs both.)
// NETSTACK_MUTATION_TESTS=fast leaves the simulations out too (unit + packetdrill only): a quick
// look on a busy machine, which counts fewer mutants as killed than the full set would.
// NETSTACK_MUTATION_ISOLATE=0 reuses one module graph across test files and runs (vitest's
// isolate: false): Stryker switches mutants at run time, so only static mutants (module-level
// constants) need a fresh graph — with this off they cannot be killed and show as survivors.
const fast = process.env['NETSTACK_MUTATION_TESTS'] === 'fast';
// NETSTACK_MUTATION_TEST_FILES=a.test.ts,b.test.ts (paths) runs only those files, IN THAT ORDER:
// on a busy machine, mutate one module against the tests written for it. It counts fewer mutants as
// killed than the full set would (a conservative score); say which files when quoting one. The
// order lets one run tell "before" from "after": list the old files first; with Stryker's bail a
// mutant whose first killer is in a new file survived every old test.
// A directory (ending in /) stands for every test file under it.
const only = process.env['NETSTACK_MUTATION_TEST_FILES']
  ?.split(',')
  .map((f) => f.trim().replace(/^\.\//, ''))
  .filter((f) => f !== '')
  .map((f) => (f.endsWith('/') ? `${f}**/*.test.ts` : f));

class ListedOrder extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (s: TestSpecification) => {
      const i = (only ?? []).findIndex((f) => (f.endsWith('**/*.test.ts') ? s.moduleId.includes('/' + f.slice(0, -'**/*.test.ts'.length)) : s.moduleId.endsWith('/' + f)));
      return i < 0 ? Number.MAX_SAFE_INTEGER : i;
    };
    return [...files].sort((a, b) => rank(a) - rank(b));
  }
}

const isolate = process.env['NETSTACK_MUTATION_ISOLATE'] !== '0';

export default defineConfig({
  test: {
    include: only?.length ? only : ['test/unit/**/*.test.ts', 'test/packetdrill/**/*.test.ts', ...(fast ? [] : ['test/sim/**/*.test.ts'])],
    exclude: ['test/sim/wire-fuzz.test.ts'],
    fileParallelism: false,
    isolate,
    testTimeout: 120_000,
    ...(only?.length ? { sequence: { sequencer: ListedOrder } } : {}),
  },
});
