// Mutation testing (npm run mutate; not part of CI: a full run takes hours on 2 cores).
// A surviving mutant in a protocol rule is a missing test: kill it with a test (a .pkt script
// where it is a wire behaviour) or explain why it is equivalent.
//
// Narrow a run to a few files:   npm run mutate -- --mutate src/tcp/seq.ts,src/tcp/rto.ts
// and to the fast tests (unit + packetdrill, no simulations): NETSTACK_MUTATION_TESTS=fast npm run mutate ...
// The incremental file (reports/stryker-incremental.json) makes a re-run test only what changed.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts' },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  mutate: ['src/tcp/**/*.ts', '!src/tcp/socket.ts', 'src/ip/**/*.ts', 'src/http/parser.ts'],
  coverageAnalysis: 'perTest',
  concurrency: 1,
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 85, break: null },
  timeoutMS: 20_000,
  // Instrumented simulations on a shared 2-core machine take a while.
  dryRunTimeoutMinutes: 60,
  ignorePatterns: ['dist', 'build', 'reports', '.stryker-tmp'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
