#!/usr/bin/env node
// The package runs its TypeScript sources directly through tsx, so `npx wxsync` works right after `npm ci`
// with no build step that could go stale.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
