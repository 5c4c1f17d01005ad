/**
 * The address that opens the dashboard: the admin listener's `/dashboard` with the admin token in the fragment.
 * A browser never sends a fragment to the server (nor in a Referer), so the token reaches no request line and no
 * log; the page's sign-in script reads it, keeps it for the tab (sessionStorage) and sends it as the bearer header.
 */
export function dashboardUrl(admin: { readonly host: string; readonly port: number }, token: string): string {
  // A listener on every address is reached on loopback from this machine.
  const host = admin.host === '0.0.0.0' || admin.host === '' ? '127.0.0.1' : admin.host === '::' ? '::1' : admin.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${admin.port}/dashboard#token=${encodeURIComponent(token)}`;
}
