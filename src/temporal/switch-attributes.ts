/**
 * The search attributes a switch carries from the moment it starts (DESIGN §5), so `status`,
 * `approve` and the UI find a switch by environment even before a worker has picked it up, and
 * whether it was started by the CLI (id `switch-<env>`) or by a schedule (id with a time suffix).
 */
import type { SearchAttributePair } from '@temporalio/common';
import { searchAttributes } from '../../workflows/definitions.ts';
import type { SwitchInput } from '../switch/contract.ts';

export function switchStartAttributes(input: Pick<SwitchInput, 'env' | 'trigger' | 'version'>): SearchAttributePair[] {
  return [
    { key: searchAttributes.env, value: input.env },
    { key: searchAttributes.trigger, value: input.trigger },
    { key: searchAttributes.version, value: input.version },
  ];
}

/** Visibility query for the switches of one environment; env names are validated, so quoting is safe. */
export function switchesOfEnvQuery(env: string, runningOnly: boolean): string {
  return `WorkflowType = 'stackSwitch' AND SwitchEnv = '${env}'${runningOnly ? ` AND ExecutionStatus = 'Running'` : ''}`;
}
