import type { CommandModule } from '../command.ts';
import { decisionCommand } from './decide.ts';

/** `switchyard approve`: lets a switch waiting in awaiting-approval go on to switching DNS. */
export const approveCommand: CommandModule = (program, cli) =>
  decisionCommand(program, cli, 'approve', 'approve a switch that is awaiting approval');
