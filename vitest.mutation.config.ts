import { defineConfig } from 'vitest/config';

// The tests that can see a mutant in src/tcp, src/ip or the HTTP parser without root: unit,
// simulation and packetdrill. (The interop suites need root and a kernel peer, and the wire fuzz
// takes minutes per run under instrumentation; npm test runs both.)
// NETSTACK_MUTATION_TESTS=fast leaves the simulations out too (unit + packetdrill only): a quick
// look on a busy machine, which counts fewer mutants as killed than the full set would.
const fast = process.env['NETSTACK_MUTATION_TESTS'] === 'fast';
// NETSTACK_MUTATION_TEST_FILES=a.test.ts,b.test.ts (paths or globs) runs only those files: on a
// busy machine, mutate one module against the tests written for it. It counts fewer mutants as
// killed than the full set would (a conservative score); say which files when quoting one.
const only = process.env['NETSTACK_MUTATION_TEST_FILES']?.split(',').map((f) => f.trim()).filter((f) => f !== '');

export default defineConfig({
  test: {
    include: only?.length ? only : ['test/unit/**/*.test.ts', 'test/packetdrill/**/*.test.ts', ...(fast ? [] : ['test/sim/**/*.test.ts'])],
    exclude: ['test/sim/wire-fuzz.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
  },
});
