import { createRootLogger } from '../../src/logging.ts';

/** The tests' root logger: warnings and errors on stderr, where a failing test's output shows them. */
export const testLogger = createRootLogger('test', { level: 'warn' });
