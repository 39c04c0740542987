/**
 * The layering of Switchyard, checked in `npm test` (test/architecture/dependencies.test.ts).
 * docs/architecture.md explains each layer; a rule here is the one place it is enforced.
 */
/**
 * Modules outside workflows/ that workflow code may import at run time (no I/O, no Node):
 * src/switch/ is the switch's pure domain (contract, stack names, clean-up rules).
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
  '^src/in-parallel\\.ts$',
];

/** Every rule is an error: `comment` is what the test prints beside the two files. */
const forbid = (name, comment, from, to) => ({ name, comment, severity: 'error', from, to });
const RUN_TIME = { dependencyTypesNot: ['type-only'] };

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    forbid(
      'workflow-imports-only-workflow-safe-modules',
      'Workflow code runs in the deterministic sandbox: at run time it imports only the workflow-safe ' +
        'modules. Activities, adapters and Node are reached through proxyActivities, never imported ' +
        '(type-only imports are erased and allowed).',
      { path: '^workflows/' },
      { pathNot: WORKFLOW_SAFE, ...RUN_TIME },
    ),
    forbid(
      'workflow-safe-modules-stay-safe',
      'The modules workflows may import import only each other at run time, so nothing a workflow ' +
        'loads can reach a Node built-in, an adapter or an activity (the set is closed).',
      { path: WORKFLOW_SAFE.filter((p) => p.startsWith('^src/') || p.startsWith('^activities/')) },
      { pathNot: WORKFLOW_SAFE, ...RUN_TIME },
    ),
    forbid(
      'activities-import-no-workflow-code',
      'Activities run outside the sandbox and are called by workflows, never the other way round.',
      { path: '^activities/' },
      { path: '^workflows/' },
    ),
    forbid(
      'clients-load-no-workflow-code',
      'Clients start workflows by name with their types; the queries, updates, ids and inputs they need are ' +
        'in src/switch/contract.ts (loading workflow code outside the sandbox would run it there).',
      { path: '^src/' },
      { path: '^workflows/', ...RUN_TIME },
    ),
    forbid(
      'server-imports-only-the-shared-protocol',
      'The sync server is its own program: from src/ it takes only the wire protocol, the token ' +
        'signer, the cursor and revision codecs, the logger and inParallel, which the clients share with it.',
      { path: '^server/' },
      { path: '^(src|activities|workflows|bench|test)/', pathNot: SHARED_WITH_SERVER },
    ),
    forbid(
      'shared-protocol-imports-nothing-of-the-client',
      'The modules shared with the server import nothing else of src/ (or the server would depend on it).',
      { path: SHARED_WITH_SERVER },
      { path: '^(src|server|activities|workflows)/', pathNot: SHARED_WITH_SERVER },
    ),
    forbid(
      'cloud-imports-no-local-environment-or-cli',
      'Ports and adapters are used by the worker, the CLI and the local supervisor alike: they import ' +
        "none of them, nor the clients of the sync service (draining is an activity, not an adapter's).",
      { path: '^src/cloud/' },
      { path: '^src/(local|cli|navcloud|load|temporal)/' },
    ),
    forbid(
      'clients-never-import-the-server',
      'Clients talk to the server over HTTP; what both need lives in the shared protocol modules. ' +
        '(Tests and bench/server.ts run the server in-process and may import it.)',
      { path: '^(src|activities|workflows)/' },
      { path: '^server/' },
    ),
    forbid(
      'no-circular',
      'A cycle means two modules are one concern split in two, or a layer imports upwards.',
      {},
      { circular: true, viaOnly: RUN_TIME },
    ),
    forbid('not-to-unresolvable', 'An import that resolves to no file or package.', {}, { couldNotResolve: true }),
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
