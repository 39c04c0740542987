import { Context } from '@temporalio/activity';
import { CloudError } from '../src/cloud/errors.ts';
import type { ExportEndLine, ExportItemLine, ExportLine, ImportResult } from '../src/navcloud/protocol.ts';
import type { EnvironmentContext } from './deps.ts';
import { refuse } from './failures.ts';
import { ProgressHeartbeat } from './heartbeat.ts';
import type { RestoreCheckpoint, RestoreInput, RestoreResult } from './types.ts';

export function restoreActivities(context: (env: string) => Promise<EnvironmentContext>, batchLines: number) {
  return {
    /**
     * Streams a backup into a stack's POST /admin/import in batches. After each batch the
     * heartbeat records the lines done, so a retried attempt skips them instead of starting over
     * (import is idempotent, so the batch in flight when an attempt died is simply sent again).
     */
    async restoreBackup(input: RestoreInput): Promise<RestoreResult> {
      const { ports, admin } = await context(input.env);
      const activity = Context.current();
      const signal = activity.cancellationSignal;
      const checkpoint = activity.info.heartbeatDetails as RestoreCheckpoint | undefined;
      const resumedFrom = checkpoint?.linesDone ?? 0;
      const manifest = await ports.backups.get(input.backupKey);
      const stack = admin(input.adminUrl);
      activity.log.info('restoring backup', { backup: manifest.key, items: manifest.items, resumedFrom });

      let items = 0;
      let applied = 0;
      let skipped = 0;
      let cursor = '';
      let batch: ExportItemLine[] = [];
      const heartbeat = new ProgressHeartbeat<RestoreCheckpoint>({ linesDone: resumedFrom, total: manifest.items });
      const flush = async (end?: ExportEndLine) => {
        if (batch.length === 0 && !end) return;
        const result: ImportResult = await stack.importLines(batch, signal, end);
        if (result.applied + result.skipped !== batch.length) {
          throw refuse(
            'ImportCountMismatch',
            `${input.adminUrl}/admin/import took ${result.applied + result.skipped} of ${batch.length} lines`,
          );
        }
        applied += result.applied;
        skipped += result.skipped;
        cursor = result.cursor;
        batch = [];
        heartbeat.progress({ linesDone: items, total: manifest.items });
      };

      try {
        for await (const text of ports.backups.read(manifest, signal)) {
          const line = parseBackupLine(text, manifest.key);
          if (line.kind !== 'item') continue;
          items += 1;
          if (items <= resumedFrom) continue;
          batch.push(line);
          if (batch.length >= batchLines) await flush();
        }
        // The backup's cursor goes last: numbers its stack took up to it but never stored stay taken here.
        await flush({ kind: 'end', cursor: manifest.cursor, items: manifest.items });
      } finally {
        heartbeat.stop();
      }
      if (items !== manifest.items) {
        throw refuse(
          'RestoreCountMismatch',
          `backup ${manifest.key} holds ${items} items but its manifest says ${manifest.items}`,
        );
      }
      return { items, applied, skipped, cursor: cursor || manifest.cursor, resumedFrom };
    },
  };
}

function parseBackupLine(text: string, key: string): ExportLine {
  try {
    return JSON.parse(text) as ExportLine;
  } catch {
    throw new CloudError(
      `backup ${key} has a line that is not JSON: ${text.slice(0, 120)}`,
      false,
      'BadBackupLine',
      key,
    );
  }
}
