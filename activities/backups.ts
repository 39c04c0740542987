import { Context } from '@temporalio/activity';
import type { EnvironmentContext } from './deps.ts';
import { refuse } from './failures.ts';
import type { BackupSummary } from './types.ts';
import type { BackupManifest } from '../src/cloud/ports.ts';

const summary = (m: BackupManifest): BackupSummary => ({
  key: m.key,
  items: m.items,
  cursor: m.cursor,
  sourceStack: m.sourceStack,
});

export function backupActivities(context: (env: string) => Promise<EnvironmentContext>) {
  return {
    /** 'latest' is the newest complete backup; anything else names a manifest key. */
    async findBackup(input: { env: string; backup: string }): Promise<BackupSummary> {
      const { env, ports } = await context(input.env);
      if (input.backup !== 'latest') return summary(await ports.backups.get(input.backup));
      const latest = await ports.backups.latest(input.env);
      if (!latest) {
        throw refuse(
          'NoBackup',
          `no complete backup of environment ${input.env} in s3://${env.backups.bucket}/${env.backups.prefix}`,
        );
      }
      return summary(latest);
    },

    /** Exports the whole stack into a new backup. The cursor is read first: the export holds at least everything up to it. */
    async exportBackup(input: { env: string; stack: string; adminUrl: string }): Promise<BackupSummary> {
      const { ports, admin } = await context(input.env);
      const activity = Context.current();
      const signal = activity.cancellationSignal;
      const client = admin(input.adminUrl);
      const { cursor } = await client.stats(input.adminUrl, signal);
      let lines = 0;
      async function* exported(): AsyncIterable<string> {
        for await (const line of client.exportSince(undefined, signal)) {
          lines += 1;
          if (lines % 500 === 0) activity.heartbeat({ lines });
          yield JSON.stringify(line);
        }
      }
      activity.heartbeat({ lines });
      return summary(await ports.backups.write({ env: input.env, sourceStack: input.stack, cursor }, exported()));
    },

    async pruneBackups(envName: string): Promise<string[]> {
      const { env, ports } = await context(envName);
      return ports.backups.prune(envName, env.backups.keep);
    },
  };
}
