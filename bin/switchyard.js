#!/usr/bin/env node
// Thin launcher: the CLI is TypeScript run through tsx, so no build step stands between a clone and a switch.
import { register } from 'tsx/esm/api';

// Node 20 is the supported floor (package.json engines): the AWS SDK's multi-line notice about it is noise on every command.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
const { runCli } = await import('../src/cli/main.ts');
// Exit at once with the command's code: an SDK connection or timer left behind must not keep the process alive.
process.exit(await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }));
