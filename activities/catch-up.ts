import { Context } from '@temporalio/activity';
import type { StackAdmin } from '../src/navcloud/admin-client.ts';
import type { ExportEndLine, ExportItemLine } from '../src/navcloud/protocol.ts';
import type { EnvironmentContext } from './deps.ts';
import { refuse } from './failures.ts';
import { ProgressHeartbeat } from './heartbeat.ts';
import { legacyRenewal, Renewal } from './renewal.ts';
import type { CopyInput, CopyResult, StackState } from './types.ts';

export function catchUpActivities(context: (env: string) => Promise<EnvironmentContext>, batchLines: number) {
  return {
    /**
     * Copies every change the source stack has after `since` into the target stack. Import keeps
     * revisions and cursors and skips what it already has, so a repeated copy is harmless.
     * `renewFenceSeconds` comes only from runs started before fencing tokens: their source is
     * fenced, and the copy renews whatever fence it finds (copyUnderFence renews the one it holds).
     */
    async copyChanges(input: CopyInput): Promise<CopyResult> {
      const { admin } = await context(input.env);
      const signal = Context.current().cancellationSignal;
      const source = admin(input.fromAdminUrl);
      if (!input.renewFenceSeconds) return copyBetween(source, admin(input.toAdminUrl), input, batchLines, signal);
      const renewal = legacyRenewal(source, input.renewFenceSeconds, signal);
      return renewal.during((copying) => copyBetween(source, admin(input.toAdminUrl), input, batchLines, copying));
    },

    /**
     * Items in a stack's store, whether it is fenced, where it forwards, and the newest cursor it
     * holds (where a copy into it starts): one answer, the store is shared. Draining is per node:
     * with `nodes` every node is asked and the stack drains when any of them does.
     */
    async stackState(input: { env: string; adminUrl: string; nodes?: string[] }): Promise<StackState> {
      const { admin } = await context(input.env);
      const client = admin(input.adminUrl);
      const signal = Context.current().cancellationSignal;
      const { items, cursor, fenced, draining, fence } = await client.stats(input.adminUrl, signal);
      const nodes = input.nodes?.length ? await Promise.all(input.nodes.map((node) => client.stats(node, signal))) : [];
      return {
        items,
        cursor,
        fenced,
        draining: draining || nodes.some((n) => n.draining),
        ...(fence.forwardTo ? { forwardTo: fence.forwardTo } : {}),
        fence: { mode: fence.mode, epoch: fence.epoch },
      };
    },
  };
}

/**
 * One copy of `source`'s changes after `since` into `target`, batch by batch, with heartbeats
 * carrying the progress; it ends with the export's end line, whose cursor is where the next starts.
 */
export async function copyBetween(
  source: StackAdmin,
  target: StackAdmin,
  input: Pick<CopyInput, 'fromAdminUrl' | 'since'>,
  batchLines: number,
  signal: AbortSignal,
): Promise<CopyResult> {
  const heartbeat = new ProgressHeartbeat({ copied: 0 });
  const startedAt = performance.now();
  let copied = 0;
  let batch: ExportItemLine[] = [];
  const flush = async (end?: ExportEndLine) => {
    if (batch.length === 0 && !end) return;
    await target.importLines(batch, signal, end);
    copied += batch.length;
    batch = [];
    heartbeat.progress({ copied });
  };
  try {
    for await (const line of source.exportSince(input.since, signal)) {
      if (line.kind === 'end') {
        // With the end line: numbers the source took up to its cursor but never stored stay taken on the target.
        await flush(line);
        if (line.items !== copied) {
          throw refuse(
            'CopyCountMismatch',
            `${input.fromAdminUrl}/admin/export announced ${line.items} items but sent ${copied}`,
          );
        }
        return { copied, cursor: line.cursor, durationMs: Math.round(performance.now() - startedAt) };
      }
      batch.push(line);
      if (batch.length >= batchLines) await flush();
    }
    throw refuse('ExportTruncated', `${input.fromAdminUrl}/admin/export ended without its end line`);
  } finally {
    heartbeat.stop();
  }
}
