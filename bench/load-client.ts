/**
 * The load generator of bench/callback.ts, in a process of its own so the server under test does not
 * share its event loop with its client. Reads `{ "concurrency": n, "requests": [{ "url", "body" }] }`
 * from the file named on the command line; prints one JSON line `{ perSecond, p50, p99, failures }`.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';

interface Request { readonly url: string; readonly body: string }
interface Job { readonly concurrency: number; readonly requests: readonly Request[] }

const file = process.argv[2];
if (file === undefined) throw new Error('usage: load-client.ts <job.json>');
const { concurrency, requests } = JSON.parse(readFileSync(file, 'utf8')) as Job;

const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const latencies = new Float64Array(requests.length);
let failures = 0;
let next = 0;
const one = (request: Request): Promise<boolean> => new Promise((resolve, reject) => {
  const req = http.request(request.url, { method: 'POST', agent, headers: { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(request.body) } }, (res) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => { text += c; });
    res.on('end', () => { resolve(res.statusCode === 200 && text === 'success'); });
  });
  req.on('error', reject);
  req.end(request.body);
});
const started = performance.now();
await Promise.all(Array.from({ length: concurrency }, async () => {
  for (let i = next++; i < requests.length; i = next++) {
    const request = requests[i];
    if (request === undefined) break;
    const t = performance.now();
    if (!(await one(request))) failures += 1;
    latencies[i] = performance.now() - t;
  }
}));
const elapsed = (performance.now() - started) / 1000;
agent.destroy();
const sorted = latencies.sort();
process.stdout.write(`${JSON.stringify({
  perSecond: requests.length / elapsed, p50: sorted[Math.floor(sorted.length * 0.5)] ?? NaN, p99: sorted[Math.floor(sorted.length * 0.99)] ?? NaN, failures,
})}\n`);
