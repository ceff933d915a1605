import { defineConfig } from 'vitest/config';

// The tests that can see a mutant in src/tcp, src/ip or the HTTP parser without root: unit,
// simulation and packetdrill. (The interop suites need root and a kernel peer, and the wire fuzz
// takes minutes per run under instrumentation; npm test runs both.)
// NETSTACK_MUTATION_TESTS=fast leaves the simulations out too (unit + packetdrill only): a quick
// look on a busy machine, which counts fewer mutants as killed than the full set would.
// NETSTACK_MUTATION_TEST_FILES=a.test.ts,b.test.ts (globs) runs only those test files: a narrow,
// much cheaper run for one file group on a loaded machine. Its score is a lower bound (a mutant
// some other test would kill counts as survived).
// NETSTACK_MUTATION_ISOLATE=0 reuses one module graph across test files and runs (vitest's
// isolate: false): Stryker switches mutants at run time, so only static mutants (module-level
// constants) need a fresh graph — with this off they cannot be killed and show as survivors.
const fast = process.env['NETSTACK_MUTATION_TESTS'] === 'fast';
const only = process.env['NETSTACK_MUTATION_TEST_FILES']?.split(',').filter((f) => f !== '');
const isolate = process.env['NETSTACK_MUTATION_ISOLATE'] !== '0';

export default defineConfig({
  test: {
    include: only ?? ['test/unit/**/*.test.ts', 'test/packetdrill/**/*.test.ts', ...(fast ? [] : ['test/sim/**/*.test.ts'])],
    exclude: ['test/sim/wire-fuzz.test.ts'],
    fileParallelism: false,
    isolate,
    testTimeout: 120_000,
  },
});
