import type http from 'node:http';

/** Body reading with a cap, and JSON answers: the small HTTP plumbing shared by the API and admin handlers. */

/** A batchget of 100 openids is ~6 KB; 1 MiB still lets oversized lists through to get their errcode. */
export const API_BODY_LIMIT = 1024 * 1024;
export const ADMIN_BODY_LIMIT = 64 * 1024;

/** The whole body, or undefined once it grows past `limit` (the rest is then ignored). */
export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    // A client that hangs up mid-body gets no answer; settling here keeps its handler from waiting forever.
    req.on('close', () => {
      resolve(undefined);
    });
    req.on('error', reject);
  });
}

/** WeChat answers JSON with this content type. */
export const JSON_TYPE = 'application/json; encoding=utf-8';

export function sendBody(res: http.ServerResponse, status: number, body: Buffer | string, type = JSON_TYPE): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  sendBody(res, status, JSON.stringify(value));
}

/** Answers 413 and closes the connection, so a client still sending a huge body cannot keep it busy. */
export function sendTooLarge(res: http.ServerResponse, limit: number, errcode: number): void {
  res.setHeader('connection', 'close');
  sendJson(res, 413, { errcode, errmsg: `request body exceeds ${limit} bytes` });
}

/** Resolves when the response can take more data, or when the client went away. */
export function drained(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
