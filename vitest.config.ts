import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Threads crash the Temporal native bridge.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    globalSetup: ['test/setup/temporal.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'switchyard', include: ['test/**/*.test.ts'], exclude: ['test/riak/**'] } },
      {
        // The real Riak cluster's fault drills strike its nodes: they run after everything else, one file at a time,
        // so no other test is talking to a node they kill.
        extends: true,
        test: {
          name: 'riak-cluster',
          include: ['test/riak/**/*.test.ts'],
          sequence: { groupOrder: 1 },
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
