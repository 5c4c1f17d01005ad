/**
 * The admin listener's credential and address. The token is WXSYNC_ADMIN_TOKEN, or one generated once into
 * the data directory (mode 0600), so the CLI on the same machine, reading the same directory, uses it with no
 * extra step; `wxsync run` writes where its admin listener listens next to it while it runs.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from './config.ts';
import { ErrorCode, WxsyncError } from './errors.ts';

type AdminConfig = Config['http']['admin'];

export interface AdminEndpoint {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
}

/** Writes a file only its owner may read, atomically (a reader never sees half a token). */
function writePrivate(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode: 0o600 });
  renameSync(temp, file);
}

function readIfThere(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WxsyncError(ErrorCode.ConfigInvalid, `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
}

/** The admin token: the configured one, else the one in the data directory, created on first use. */
export function adminToken(config: AdminConfig, create: boolean): string | undefined {
  if (config.token !== undefined) return config.token;
  const stored = readIfThere(config.tokenFile);
  if (stored !== undefined && stored !== '') return stored;
  if (!create) return undefined;
  const token = randomBytes(32).toString('base64url');
  writePrivate(config.tokenFile, `${token}\n`);
  return token;
}

/**
 * Whether an `Authorization` header carries the token. Both sides are hashed first, so the comparison takes
 * the same time whatever the length or the first differing byte of what was sent.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const sent = /^Bearer (\S+)$/.exec(header ?? '')?.[1] ?? '';
  const digest = (value: string): Buffer => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(sent), digest(token));
}

export function writeAdminEndpoint(config: AdminConfig, endpoint: AdminEndpoint): void {
  writePrivate(config.endpointFile, `${JSON.stringify(endpoint)}\n`);
}

export function removeAdminEndpoint(config: AdminConfig): void {
  rmSync(config.endpointFile, { force: true });
}

/** Where this machine's `wxsync run` listens for admin requests, or undefined when none wrote it. */
export function readAdminEndpoint(config: AdminConfig): AdminEndpoint | undefined {
  const text = readIfThere(config.endpointFile);
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<AdminEndpoint>;
    if (typeof value.host === 'string' && Number.isInteger(value.port) && Number.isInteger(value.pid)) {
      return { host: value.host, port: value.port as number, pid: value.pid as number };
    }
  } catch {
    // Unreadable: treated like no running process, which then tells the user plainly.
  }
  return undefined;
}
