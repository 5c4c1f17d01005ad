// The dashboard's sign-in, the one page the admin listener serves without the token (dashboard/sign-in.ts). It takes
// the token from the fragment of the address wxsync prints (…/dashboard#token=…), or the one this tab kept, then
// starts the dashboard, whose code, like every answer of the admin listener, needs the token: it is fetched with the
// bearer header and run from a blob: URL.
/* global document, location, sessionStorage, history, fetch, Blob */
(() => {
  const KEY = 'wxsync-admin-token';
  const say = (en, zh) => { document.getElementById('signin').textContent = `${en} · ${zh}`; };
  const fragment = /^#token=([^&]+)$/.exec(location.hash);
  if (fragment !== null) {
    // Out of the address bar and the tab's history at once; kept for this tab only.
    history.replaceState(null, '', location.pathname + location.search);
    try {
      sessionStorage.setItem(KEY, decodeURIComponent(fragment[1]));
    } catch {
      say('The token in this address is malformed: open the address wxsync printed', '地址中的令牌无效：请打开 wxsync 打印的地址');
      return;
    }
  }
  const token = sessionStorage.getItem(KEY);
  if (token === null) {
    say('Open the dashboard with the address wxsync prints: it ends in #token=…', '请用 wxsync 打印的地址打开看板（以 #token=… 结尾）');
    return;
  }
  (async () => {
    const res = await fetch('/dashboard/app.js', { headers: { authorization: `Bearer ${token}` } });
    if (res.status === 401) {
      sessionStorage.removeItem(KEY);
      say('The admin token was refused: open the address wxsync printed', '管理令牌被拒绝：请打开 wxsync 打印的地址');
      return;
    }
    if (!res.ok) {
      say(`This wxsync serves no dashboard (HTTP ${res.status}): it needs the api role`, `此 wxsync 未提供看板（HTTP ${res.status}）：需要 api 角色`);
      return;
    }
    const app = await import(URL.createObjectURL(new Blob([await res.text()], { type: 'text/javascript' })));
    await app.start({ token, forget: () => { sessionStorage.removeItem(KEY); } });
  })().catch((error) => {
    const message = error instanceof Error ? error.message : String(error);
    say(`The dashboard could not start: ${message}`, `看板无法启动：${message}`);
  });
})();
