import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SwitchReport } from '../src/switch/contract.ts';
import type { SwitchMetrics } from '../src/temporal/switch-metrics.ts';
import type { EnvironmentContext } from './deps.ts';

export function reportActivities(
  context: (env: string) => Promise<EnvironmentContext>,
  reportsDir: string,
  metrics?: SwitchMetrics,
) {
  return {
    /**
     * On the local profile every switch leaves its report in reportsDir; returns the file or null.
     * The worker's metrics count the report once it is written, so a retry does not count it twice.
     */
    async writeReport(report: SwitchReport): Promise<string | null> {
      const { env } = await context(report.env);
      let file: string | null = null;
      if (env.profile === 'local') {
        await mkdir(reportsDir, { recursive: true });
        file = join(reportsDir, `${report.workflowId}.json`);
        await writeFile(file, JSON.stringify(report, null, 2) + '\n');
      }
      metrics?.record(report);
      return file;
    },
  };
}
