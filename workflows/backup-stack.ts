/**
 * The `backupStack` workflow: exports the stack DNS points to into the backup store, then keeps
 * only the newest `backups.keep` backups.
 */
import type { BackupReport } from '../src/switch/contract.ts';
import { quick, streaming } from './activities.ts';
import { stop } from './failures.ts';

export async function backupStack(input: { env: string }): Promise<BackupReport> {
  const { env } = input;
  const plan = await quick.planSwitch(env);
  const live = plan.live?.stack;
  if (!live?.outputs || live.status !== 'ready') {
    throw stop('NoLiveStack', `environment ${env} has no ready stack behind its DNS record to back up`);
  }
  const backup = await streaming.exportBackup({ env, stack: live.name, adminUrl: live.outputs.adminUrl });
  const pruned = await quick.pruneBackups(env);
  return { env, stack: live.name, key: backup.key, items: backup.items, pruned };
}
