#!/usr/bin/env node
// Thin launcher for the sync server (see server/main.ts); tsx compiles on load.
import { register } from 'tsx/esm/api';
register();
await import('../server/main.ts');
