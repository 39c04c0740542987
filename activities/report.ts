import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SwitchReport } from '../src/switch/contract.ts';
import type { EnvironmentContext } from './deps.ts';

export function reportActivities(context: (env: string) => Promise<EnvironmentContext>, reportsDir: string) {
  return {
    /** On the local profile every switch leaves its report in reportsDir; returns the file or null. */
    async writeReport(report: SwitchReport): Promise<string | null> {
      const { env } = await context(report.env);
      if (env.profile !== 'local') return null;
      await mkdir(reportsDir, { recursive: true });
      const file = join(reportsDir, `${report.workflowId}.json`);
      await writeFile(file, JSON.stringify(report, null, 2) + '\n');
      return file;
    },
  };
}
