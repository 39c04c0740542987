#!/usr/bin/env node
// Thin launcher for one admin call to the sync node on this machine (see server/admin-call.ts).
import { register } from 'tsx/esm/api';
register();
await import('../server/admin-call.ts');
