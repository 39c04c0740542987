/**
 * The layering of Switchyard, checked in `npm test` (test/architecture/dependencies.test.ts).
 * docs/architecture.md explains each layer; a rule here is the one place it is enforced.
 */
/**
 * Modules outside workflows/ that workflow code may import at run time (no I/O, no Node):
 * src/switch/ is the switch's pure domain (contract, stack names, clean-up and invariant rules).
 */
const WORKFLOW_SAFE = [
  '^workflows/',
  '^src/switch/',
  '^src/cloud/ports\\.ts$',
  '^src/cloud/dns-target\\.ts$',
  '^activities/types\\.ts$',
  '^node_modules/@temporalio/(workflow|common)/',
];
/** What server/ may take from src/: the wire protocol both sides speak (shapes, tokens, cursors, revisions) and the logger. */
const SHARED_WITH_SERVER = [
  '^src/navcloud/protocol\\.ts$',
  '^src/navcloud/token\\.ts$',
  '^src/navcloud/cursor\\.ts$',
  '^src/navcloud/revision\\.ts$',
  '^src/logging\\.ts$',
];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'workflow-imports-only-workflow-safe-modules',
      comment:
        'Workflow code runs in the deterministic sandbox: it may import workflows/, the switch contract, ' +
        'the port types and @temporalio/workflow|common at run time. Activities, adapters and Node are ' +
        'reached through proxyActivities, never imported (type-only imports are erased and allowed).',
      severity: 'error',
      from: { path: '^workflows/' },
      to: { pathNot: WORKFLOW_SAFE, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'workflow-safe-modules-stay-safe',
      comment:
        'The modules workflows may import import only each other at run time, so nothing a workflow ' +
        'loads can reach a Node built-in, an adapter or an activity (the set is closed).',
      severity: 'error',
      from: { path: WORKFLOW_SAFE.filter((p) => p.startsWith('^src/') || p.startsWith('^activities/')) },
      to: { pathNot: WORKFLOW_SAFE, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'server-imports-only-the-shared-protocol',
      comment:
        'The sync server is its own program: from src/ it takes only the wire protocol, the token ' +
        'signer, the cursor and revision codecs and the logger, which the clients share with it.',
      severity: 'error',
      from: { path: '^server/' },
      to: { path: '^(src|activities|workflows|bench|test)/', pathNot: SHARED_WITH_SERVER },
    },
    {
      name: 'shared-protocol-imports-nothing-of-the-client',
      comment: 'The modules shared with the server import nothing else of src/ (or the server would depend on it).',
      severity: 'error',
      from: { path: SHARED_WITH_SERVER },
      to: { path: '^(src|server|activities|workflows)/', pathNot: SHARED_WITH_SERVER },
    },
    {
      name: 'cloud-imports-no-local-environment-or-cli',
      comment:
        'Ports and adapters are used by the worker, the CLI and the local supervisor alike: they import ' +
        'none of them, nor the clients of the sync service (draining is an activity, not an adapter\'s).',
      severity: 'error',
      from: { path: '^src/cloud/' },
      to: { path: '^src/(local|cli|navcloud|fleet|temporal)/' },
    },
    {
      name: 'clients-never-import-the-server',
      comment:
        'Clients talk to the server over HTTP; what both need lives in the shared protocol modules. ' +
        '(Tests and bench/server.ts run the server in-process and may import it.)',
      severity: 'error',
      from: { path: '^(src|activities|workflows)/' },
      to: { path: '^server/' },
    },
    {
      name: 'no-circular',
      comment: 'A cycle means two modules are one concern split in two, or a layer imports upwards.',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|\\.tools)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
