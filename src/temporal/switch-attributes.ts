/**
 * What a switch carries from the moment it starts, whoever starts it (the CLI, a night of the
 * schedule): its id `switch-<env>`, the search attributes of DESIGN §5, so the UI and visibility
 * queries see its environment, trigger and version before a worker picks it up, and the UI's
 * fixed summary and details (in SDK 1.24 only the starter can set them, not the workflow).
 */
import type { SearchAttributePair } from '@temporalio/common';
import { searchAttributes } from '../../workflows/definitions.ts';
import { switchWorkflowId, type SwitchInput } from '../switch/contract.ts';

export function switchStartAttributes(input: Pick<SwitchInput, 'env' | 'trigger' | 'version'>): SearchAttributePair[] {
  return [
    { key: searchAttributes.env, value: input.env },
    { key: searchAttributes.trigger, value: input.trigger },
    { key: searchAttributes.version, value: input.version },
  ];
}

/** Start options of a stackSwitch, for a client start and for a child start alike. */
export function switchStartOptions(input: SwitchInput) {
  return {
    workflowId: switchWorkflowId(input.env),
    typedSearchAttributes: switchStartAttributes(input),
    staticSummary: `switch ${input.env} to version ${input.version} (trigger ${input.trigger})`,
    staticDetails: [
      `- **Environment:** ${input.env}`,
      `- **Version:** ${input.version}`,
      `- **Backup:** ${input.backup}`,
      `- **Approval:** ${input.approval ? `${input.approval}, asked for by this switch` : `as the environment file of ${input.env} says`}`,
      `- **Trigger:** ${input.trigger}`,
      ...(input.keepFailed ? ['- **Keep failed:** the new stack is kept if the switch fails before DNS changes'] : []),
      '',
      `Follow it with \`switchyard status --env ${input.env}\`; decide with \`switchyard approve --env ${input.env}\` or \`switchyard abort --env ${input.env}\`.`,
    ].join('\n'),
  };
}

/** Start options of a rehearsal: the switch's id (one lock per environment) and attributes, its own summary. */
export function rehearsalStartOptions(input: SwitchInput) {
  return {
    ...switchStartOptions(input),
    staticSummary: `rehearse switching ${input.env} to version ${input.version} (trigger ${input.trigger}): no fence, DNS untouched`,
  };
}
