/**
 * better-sqlite3 for the Node.js this runs on. 13.x binds through Node-API and ships its own
 * binaries; it needs Node 22 or later (on Node 20 it crashes). 12.x derives its statements and
 * databases from node::ObjectWrap, and Node 24.19's ObjectWrap removes a cleanup hook in its
 * destructor with a check that fails when the garbage collector finalizes the object outside any
 * context: the node aborts ("Assertion failed: (env) != nullptr" in RemoveEnvironmentCleanupHook,
 * from Statement::~Statement) and a client sees its connection closed mid-request. Every store
 * leaves statements behind for the collector (pragmas, iterators, an export's reader); a restore's
 * large imports are what make it collect them. Node 20 keeps 12.x (an optional dependency) until
 * it is dropped, and this module with it.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

const require = createRequire(import.meta.url);
const nodeMajor = Number(process.versions.node.split('.')[0]);

function load(): typeof BetterSqlite3 {
  if (nodeMajor >= 22) return require('better-sqlite3') as typeof BetterSqlite3;
  try {
    return require('better-sqlite3-node20') as typeof BetterSqlite3;
  } catch (error) {
    throw new Error(
      `Node.js ${process.versions.node} needs the optional dependency better-sqlite3-node20 (better-sqlite3 12), which is not installed: ` +
        'npm leaves it out where it can neither download nor build it; install a C++ toolchain and run npm ci again, or run Node.js 22 or later',
      { cause: error },
    );
  }
}

export const Database = load();
export type Database = BetterSqlite3.Database;
