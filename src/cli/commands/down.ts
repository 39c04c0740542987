/** `switchyard down`: stops the local environment `up` started, and every local stack with it. */
import { stopLocalEnvironment } from '../../local/control.ts';
import { localDataDir, localStatePath } from '../../local/state.ts';
import type { CommandModule } from '../command.ts';

export const downCommand: CommandModule = (program, cli) => {
  program
    .command('down')
    .description('stop the local environment and remove every local stack')
    .action(async () => {
      const { stopped, stacks } = await stopLocalEnvironment(localStatePath(), localDataDir(), cli.logger);
      if (!stopped.length && !stacks.length) return cli.out('The local environment was not running; nothing to stop.');
      cli.out(
        [
          'Local environment stopped.',
          ...stopped.map((s) => `  stopped ${s}`),
          ...stacks.map((s) => `  removed stack ${s}`),
        ].join('\n'),
      );
    });
};
