/**
 * ESLint with type information: `npm run lint`, run before every `npm test`.
 * What a module may import is dependency-cruiser's (.dependency-cruiser.cjs, checked in
 * test/architecture/dependencies.test.ts), and the workflow bundler refuses Node built-ins too;
 * here are only the checks that need types or that an import graph cannot see.
 */
import { createRequire } from 'node:module';
import { relative } from 'node:path';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

const layering = createRequire(import.meta.url)('./.dependency-cruiser.cjs');
/** The modules that run in Temporal's workflow sandbox: the ones workflow code may import (one list, in the layering). */
const sandboxed = layering.forbidden
  .find((rule) => rule.name === 'workflow-imports-only-workflow-safe-modules')
  .to.pathNot.filter((pattern) => !pattern.includes('node_modules'))
  .map((pattern) => new RegExp(pattern));
const runsInSandbox = (path) => sandboxed.some((pattern) => pattern.test(relative(import.meta.dirname, path)));

export default defineConfig(
  { ignores: ['node_modules/', '.tools/', 'dist/', '.data/', 'test-artifacts/'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      // `import { type X }` keeps `import {} from '…'` under verbatimModuleSyntax: the module still loads,
      // while dependency-cruiser counts the import as type-only (in a workflow, an activity would enter the sandbox).
      '@typescript-eslint/no-import-type-side-effects': 'error',
    },
  },
  {
    // The sandbox is a bare V8 context: Node's globals are not there, though @types/node declares them.
    files: [runsInSandbox],
    rules: {
      'no-restricted-globals': [
        'error',
        ...['process', 'Buffer', 'global', 'setImmediate', 'clearImmediate'].map((name) => ({
          name,
          message:
            'Workflow code runs in a V8 context without Node globals: take the value as an input or from an activity.',
        })),
      ],
    },
  },
);
