import type { CommandModule } from '../command.ts';
import { decisionCommand } from './decide.ts';

/** `switchyard abort`: stops a switch before it switches DNS; the workflow refuses once switching has begun. */
export const abortCommand: CommandModule = (program, cli) =>
  decisionCommand(program, cli, 'abort', 'abort a switch before it switches DNS');
