/**
 * The search attributes a switch carries from the moment it starts (DESIGN §5), so the UI and
 * visibility queries see its environment, trigger and version even before a worker picks it up.
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
