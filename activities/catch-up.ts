import { Context } from '@temporalio/activity';
import type { ExportItemLine, FenceResult } from '../src/navcloud/protocol.ts';
import type { EnvironmentContext } from './deps.ts';
import { refuse } from './failures.ts';
import type { CopyInput, CopyResult } from './types.ts';

export function catchUpActivities(context: (env: string) => Promise<EnvironmentContext>, batchLines: number) {
  return {
    /**
     * Copies every change the source stack has after `since` into the target stack. Import keeps
     * revisions and cursors and skips what it already has, so a repeated copy is harmless.
     */
    async copyChanges(input: CopyInput): Promise<CopyResult> {
      const { admin } = await context(input.env);
      const activity = Context.current();
      const signal = activity.cancellationSignal;
      const source = admin(input.fromAdminUrl);
      const target = admin(input.toAdminUrl);
      let copied = 0;
      let batch: ExportItemLine[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        await target.importLines(batch, signal);
        copied += batch.length;
        batch = [];
        activity.heartbeat({ copied });
      };
      activity.heartbeat({ copied });
      for await (const line of source.exportSince(input.since, signal)) {
        if (line.kind === 'end') {
          await flush();
          if (line.items !== copied) {
            throw refuse('CopyCountMismatch', `${input.fromAdminUrl}/admin/export announced ${line.items} items but sent ${copied}`);
          }
          return { copied, cursor: line.cursor };
        }
        batch.push(line);
        if (batch.length >= batchLines) await flush();
      }
      throw refuse('ExportTruncated', `${input.fromAdminUrl}/admin/export ended without its end line`);
    },

    /** Items in a stack's store, whether it is fenced or draining, and the newest cursor it holds (where a copy into it starts). */
    async stackState(input: { env: string; adminUrl: string }): Promise<{ items: number; cursor: string; fenced: boolean; draining: boolean }> {
      const { admin } = await context(input.env);
      const { items, cursor, fenced, draining } = await admin(input.adminUrl).stats(input.adminUrl, Context.current().cancellationSignal);
      return { items, cursor, fenced, draining };
    },

    /** After this returns, the stack accepts no write past the returned cursor. */
    async fenceStack(input: { env: string; adminUrl: string }): Promise<FenceResult> {
      const { admin } = await context(input.env);
      return admin(input.adminUrl).fence({ leaseSeconds: 60 }, Context.current().cancellationSignal);
    },

    async unfenceStack(input: { env: string; adminUrl: string }): Promise<FenceResult> {
      const { admin } = await context(input.env);
      return admin(input.adminUrl).unfence(Context.current().cancellationSignal);
    },
  };
}
