/**
 * `navcloud-sync`: one sync node configured from the environment (server/README.md). SIGTERM or SIGINT
 * shuts it down gracefully and it exits 0; a bad configuration exits 2 with one line saying what is wrong.
 */
import { createRootLogger } from '../src/logging.ts';
import { startServer } from './app.ts';
import { configFromEnvOrExit } from './config.ts';

const logger = createRootLogger('navcloud-sync');

const config = configFromEnvOrExit(process.env, 'navcloud-sync');

try {
  const server = await startServer({ ...config, logger });
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} catch (error) {
  logger.fatal({ err: error }, 'sync node could not start');
  process.stderr.write(`navcloud-sync: could not start: ${(error as Error).message}\n`);
  process.exit(1);
}
