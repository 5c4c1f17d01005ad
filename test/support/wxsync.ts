import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { adminToken, readAdminEndpoint } from '../../lib/admin.ts';
import { loadConfig, packageRoot } from '../../lib/config.ts';
import { waitFor } from './env.ts';

const BIN = path.join(packageRoot, 'bin', 'wxsync.js');

export interface Ran { readonly code: number | null; readonly stdout: string; readonly stderr: string }

/** One `wxsync` command to its end, with the test's environment. */
export async function wxsync(env: Record<string, string>, args: readonly string[]): Promise<Ran> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-8000); });
  const [code] = await once(child, 'exit') as [number | null];
  return { code, stdout, stderr };
}

export interface RunningWxsync {
  /** The last 8 kB the process logged. */
  stderr(): string;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>;
}

/** `wxsync run --roles …`, once /readyz on `port` answers 200. */
export async function startRun(env: Record<string, string>, port: number, roles: string): Promise<RunningWxsync> {
  const child = spawn(process.execPath, [BIN, 'run', '--roles', roles], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-8000); });
  const exited = once(child, 'exit') as Promise<[number | null]>;
  const running: RunningWxsync = {
    stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      const [code] = await exited;
      return code;
    },
  };
  try {
    await waitFor('wxsync run to be ready', 60_000, async () => ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200) || undefined, 200);
  } catch (error) {
    await running.stop();
    throw new Error(`${(error as Error).message}\n${stderr}`, { cause: error });
  }
  return running;
}

/** A request to the admin listener of the `wxsync run` of this environment, with its token, as the CLI sends it. */
export async function adminFetch(env: Record<string, string>, path: string, init: RequestInit = {}): Promise<Response> {
  const { admin } = loadConfig(env).http;
  const endpoint = readAdminEndpoint(admin);
  if (endpoint === undefined) throw new Error('no wxsync run has written its admin endpoint');
  return fetch(`http://${endpoint.host}:${endpoint.port}${path}`, {
    ...init, headers: { ...Object.fromEntries(new Headers(init.headers).entries()), authorization: `Bearer ${adminToken(admin, false) ?? ''}` },
  });
}
