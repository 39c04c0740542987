/** Every workflow the Switchyard worker runs (bundled from this file). */
export { stackSwitch } from './stack-switch.ts';
export { rehearsal } from './rehearsal.ts';
export { rollback } from './rollback.ts';
export { backupStack } from './backup-stack.ts';
export { nightlyRefresh } from './nightly-refresh.ts';
