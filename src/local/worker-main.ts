/**
 * The local environment's worker process (src/local/environment.ts starts it as a child, so a
 * fault drill can kill it and start another). Environments come from SWITCHYARD_ENVIRONMENTS and
 * reports go under the data directory of the local environment it serves (SWITCHYARD_LOCAL_STATE).
 */
import { join } from 'node:path';
import { environmentsDir, loadEnvironment } from '../config/environment.ts';
import { createRootLogger } from '../logging.ts';
import { activityLogFields } from '../temporal/activity-log.ts';
import { defaultDeps, runWorker } from '../temporal/worker.ts';
import { readLocalState } from './state.ts';

const logger = createRootLogger('switchyard-worker', { mixin: activityLogFields });
const state = readLocalState();
const environments = process.env.SWITCHYARD_ENVIRONMENTS || environmentsDir;
await runWorker({
  logger,
  deps: {
    ...defaultDeps(() => state, logger),
    loadEnvironment: (name) => loadEnvironment(name, environments),
    reportsDir: join(state.dataDir, 'reports'),
  },
});
