import type { Command } from 'commander';
import type { Cli } from './context.ts';

/** One `switchyard` command: adds itself (options, action) to the program. Listed in main.ts. */
export type CommandModule = (program: Command, cli: Cli) => void;

/** `--env` as every environment-bound command spells it. */
export const ENV_OPTION = ['--env <name>', 'environment (infra/environments/<name>.yaml)'] as const;
