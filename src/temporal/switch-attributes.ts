/**
 * The search attributes a switch carries from the moment it starts (DESIGN §5), so `status`,
 * `approve` and the UI find a switch by environment even before its first phase upserts them, and
 * whether it was started by the CLI (id `switch-<env>`) or by a schedule (id with a time suffix).
 */
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import type { SwitchInput } from '../switch/contract.ts';

export const switchEnvKey = defineSearchAttributeKey('SwitchEnv', SearchAttributeType.KEYWORD);
export const switchTriggerKey = defineSearchAttributeKey('SwitchTrigger', SearchAttributeType.KEYWORD);
export const switchVersionKey = defineSearchAttributeKey('SwitchVersion', SearchAttributeType.KEYWORD);

export function switchStartAttributes(input: Pick<SwitchInput, 'env' | 'trigger' | 'version'>): SearchAttributePair[] {
  return [
    { key: switchEnvKey, value: input.env },
    { key: switchTriggerKey, value: input.trigger },
    { key: switchVersionKey, value: input.version },
  ];
}

/** Visibility query for the switches of one environment; env names are validated, so quoting is safe. */
export function switchesOfEnvQuery(env: string, runningOnly: boolean): string {
  return `WorkflowType = 'stackSwitch' AND SwitchEnv = '${env}'${runningOnly ? ` AND ExecutionStatus = 'Running'` : ''}`;
}
