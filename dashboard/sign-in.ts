/**
 * The dashboard's one page without a credential. A browser opening an address cannot send the admin listener's
 * bearer header, so `/dashboard` alone is answered without the token (lib/http-server.ts, `publicPage`), and with
 * the same fixed page for everyone: no account, figure, setting or file of this installation, nothing but a script
 * (web/sign-in.js) that takes the token from the address's fragment (dashboard/url.ts: a fragment never reaches a
 * server or its logs), keeps it for the tab and loads the dashboard with it. Everything the page then needs (its
 * code, ECharts, every figure) is fetched with the bearer header like any admin request. Its policy lets it run
 * that one script (by hash) and code it fetched itself with the token (blob: URLs), talk to this listener alone,
 * and load nothing from anywhere else.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const DASHBOARD_PATH = '/dashboard';

export interface SignInPage {
  readonly path: string;
  readonly html: string;
  readonly headers: Readonly<Record<string, string>>;
}

let page: SignInPage | undefined;

export function signInPage(): SignInPage {
  if (page !== undefined) return page;
  const script = readFileSync(new URL('web/sign-in.js', import.meta.url), 'utf8');
  const hash = createHash('sha256').update(script).digest('base64');
  // An empty icon, so the browser does not ask for /favicon.ico (which would be refused).
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>wxsync</title><link rel="icon" href="data:,"></head>
<body><p id="signin"></p>
<script>${script}</script></body></html>
`;
  page = {
    path: DASHBOARD_PATH,
    html,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': [
        "default-src 'none'", `script-src 'sha256-${hash}' blob:`, 'style-src blob:', 'img-src data: blob:', "connect-src 'self'",
        "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
      ].join('; '),
    },
  };
  return page;
}
