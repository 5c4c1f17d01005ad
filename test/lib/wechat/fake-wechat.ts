import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the fake answers one request. */
export interface FakeAnswer {
  readonly status?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent with a content-length. */
  readonly body?: string | Buffer;
  /** Sent chunked (no content-length), one write per chunk, `gapMs` apart. */
  readonly chunks?: readonly Buffer[];
  readonly gapMs?: number;
  /** Close the connection without answering. */
  readonly destroy?: boolean;
  /** Never answer. */
  readonly hang?: boolean;
}

export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly body: string;
  readonly remotePort: number;
}

export type Responder = (request: FakeRequest) => FakeAnswer;

export const json = (value: unknown, status = 200): FakeAnswer => ({
  status,
  headers: { 'content-type': 'application/json; encoding=utf-8' },
  body: JSON.stringify(value),
});

/**
 * A tiny stand-in for api.weixin.qq.com that answers whatever a test scripts, hostile answers included;
 * stable_token hands out TOKEN-1, TOKEN-2, … unless a test overrides it.
 */
export class FakeWechat {
  readonly requests: FakeRequest[] = [];
  private readonly responders = new Map<string, Responder>();
  private issued = 0;

  private constructor(private readonly server: http.Server, readonly base: string) {
    this.on('/cgi-bin/stable_token', () => {
      this.issued += 1;
      return json({ access_token: `TOKEN-${this.issued}`, expires_in: 7200 });
    });
  }

  static async start(): Promise<FakeWechat> {
    // The handler needs the instance, which needs the listening server: the holder breaks the cycle.
    const holder: { fake?: FakeWechat } = {};
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        holder.fake?.answer(req, res, Buffer.concat(chunks).toString('utf8'));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    holder.fake = new FakeWechat(server, `http://127.0.0.1:${port}`);
    return holder.fake;
  }

  on(path: string, responder: Responder): void {
    this.responders.set(path, responder);
  }

  calls(path: string): FakeRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => { resolve(); });
      this.server.closeAllConnections();
    });
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    const request = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body, remotePort: req.socket.remotePort ?? 0 };
    this.requests.push(request);
    const responder = this.responders.get(url.pathname);
    const answer = responder === undefined ? json({ errcode: 40066, errmsg: 'invalid url' }, 404) : responder(request);
    if (answer.destroy === true) {
      req.socket.destroy();
      return;
    }
    if (answer.hang === true) return;
    if (answer.chunks !== undefined) {
      res.writeHead(answer.status ?? 200, answer.headers);
      const rest = [...answer.chunks];
      const pump = (): void => {
        const chunk = rest.shift();
        if (res.destroyed) return;
        if (chunk === undefined) {
          res.end();
          return;
        }
        res.write(chunk);
        setTimeout(pump, answer.gapMs ?? 0);
      };
      pump();
      return;
    }
    const payload = answer.body ?? '';
    res.writeHead(answer.status ?? 200, { ...answer.headers, 'content-length': String(Buffer.byteLength(payload)) });
    res.end(payload);
  }
}
