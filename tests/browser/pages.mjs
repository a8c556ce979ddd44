// Rampart's pages in a real headless Chromium: the account flows end to end, stored and
// reflected XSS, clickjacking, CSRF from a real foreign page (login CSRF too), cookie flags,
// axe-core accessibility on every page, screenshots at desktop and phone width.
//
// Started by crates/rampart/tests/api/browser.rs with:
//   RAMPART_BASE_URL     http://localhost:<port> of a running server (its public_url)
//   RAMPART_MAIL_FILE    a JSON array of the mails the server sent, rewritten as they arrive
//   RAMPART_SCREENSHOTS  where to write the screenshots
// Exits 1 with every failure listed, 0 when all checks passed.

import { randomBytes } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import {
  BASE, PAYLOAD, LINK_PAYLOAD, DESKTOP, check, totp, launch, watch, inspect, go, signIn, signOut, enableTotp, finish,
  crashed,
} from './lib.mjs';

const MAIL_FILE = process.env.RAMPART_MAIL_FILE;
const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'violet umbrella galaxy tractor';

async function waitForMail(to, subject) {
  for (let i = 0; i < 200; i += 1) {
    if (existsSync(MAIL_FILE)) {
      try {
        const mails = JSON.parse(readFileSync(MAIL_FILE, 'utf8'));
        const found = mails.filter((m) => m.to.includes(to) && m.subject.includes(subject));
        if (found.length) return found[found.length - 1];
      } catch { /* being rewritten */ }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no mail "${subject}" to ${to}`);
}
function linkIn(body, path) {
  const m = body.match(new RegExp(`(https?://[^\\s]+${path}#token=[A-Za-z0-9_-]+)`));
  if (!m) throw new Error(`no ${path} link in ${body}`);
  return m[1];
}

// A page on another origin (127.0.0.1 vs localhost: another site) for framing and CSRF.
function foreignServer(html) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html(req.url));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function main() {
  const browser = await launch();
  const context = await browser.newContext({ viewport: DESKTOP });
  await watch(context);
  const page = await context.newPage();
  globalThis.__page = page;
  const email = `ui-${randomBytes(6).toString('hex')}@example.com`;

  // Reflected: query parameters echoed into the page.
  await go(page, `/ui/login?email=${encodeURIComponent(PAYLOAD)}&notice=${encodeURIComponent(PAYLOAD)}`, 'login-reflected');
  check((await page.inputValue('#f-email')) === PAYLOAD, 'the email parameter is shown as a value, as typed');
  await go(page, `/ui/nope?x=${encodeURIComponent(PAYLOAD + LINK_PAYLOAD)}`, 'not-found');
  await go(page, `/ui/forgot?notice=${encodeURIComponent(LINK_PAYLOAD)}`, 'forgot-reflected');

  // Register, then confirm by the mailed link.
  await go(page, '/ui/register', 'register');
  await page.fill('#f-email', email);
  await page.fill('#f-password', PASSWORD);
  await Promise.all([page.waitForURL(/\/ui\/login\?notice=/), page.click('main button[type=submit]')]);
  await inspect(page, 'login');
  const verify = linkIn((await waitForMail(email, 'Verify your email')).body, '/ui/verify');
  await go(page, '/ui/verify', 'verify-without-token');
  check(await page.isVisible('#token-missing'), 'verify without a token says the link is incomplete');
  await go(page, verify, 'verify');
  check(!page.url().includes('token='), 'the token is removed from the address bar');
  await Promise.all([page.waitForURL(/notice=verified/), page.click('main button[type=submit]')]);

  // Sign in; cookies as the browser sees them.
  await signIn(page, email, PASSWORD);
  const cookies = await context.cookies(BASE);
  const session = cookies.find((c) => c.name === '__Host-rampart_session');
  check(!!session, 'the session cookie is __Host-rampart_session');
  check(session && session.httpOnly && session.secure && session.sameSite === 'Lax' && session.path === '/' && !session.domain.startsWith('.'),
    `session cookie flags: ${JSON.stringify(session)}`);
  check(!(await page.evaluate(() => document.cookie)).includes('rampart_session'), 'document.cookie cannot read the session');

  // Stored XSS in the display name.
  await page.fill('#f-display_name', PAYLOAD);
  await Promise.all([page.waitForURL(/notice=saved/), page.click('form[action="/ui/account/profile"] button')]);
  await inspect(page, 'account');
  check((await page.inputValue('#f-display_name')) === PAYLOAD, 'the display name is stored and shown as typed');

  // Two-step verification.
  const { secret, enabledAt, recovery } = await enableTotp(page, PASSWORD);
  check(recovery.length === 10, `ten recovery codes shown, got ${recovery.length}`);

  await signOut(page);
  await inspect(page, 'login-signed-out');
  await signIn(page, email, PASSWORD, () => totp(secret, enabledAt + 30));
  await signOut(page);
  await signIn(page, email, PASSWORD, () => recovery[0]);

  // Another device, whose User-Agent is a payload shown in the sessions list; revoke it.
  const other = await browser.newContext({ viewport: DESKTOP, userAgent: `Evil ${PAYLOAD} ${LINK_PAYLOAD}` });
  await watch(other);
  const otherPage = await other.newPage();
  await signIn(otherPage, email, PASSWORD, () => recovery[1]);
  await go(page, '/ui/account', 'account-two-sessions');
  const row = page.locator('tbody tr', { hasText: 'Evil' });
  check((await row.count()) === 1, 'the other session is listed with its user agent');
  await Promise.all([page.waitForURL(/notice=session_revoked/), row.locator('button').click()]);
  await otherPage.goto(`${BASE}/ui/account`);
  check(otherPage.url().includes('/ui/login'), 'the revoked session is signed out');
  await other.close();

  // Change the password.
  await page.fill('#f-current_password', PASSWORD);
  await page.fill('#f-new_password', NEW_PASSWORD);
  await Promise.all([page.waitForURL(/notice=password_changed/), page.click('form[action="/ui/account/password"] button')]);
  await inspect(page, 'account');

  // An API key named with a payload: shown once, works, never shown again, revoked at once.
  const withKey = (key) => fetch(`${BASE}/auth/me`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
  await page.fill('#f-name', PAYLOAD);
  await Promise.all([page.waitForURL(/\/ui\/account\/api-keys$/), page.click('form[action="/ui/account/api-keys"] button')]);
  await inspect(page, 'api-key-created');
  const apiKey = (await page.textContent('#new-api-key')).trim();
  check(apiKey.startsWith('rpk_'), 'the new API key is shown');
  check(await page.isVisible('button[data-copy="new-api-key"]'), 'the copy button is shown with the script');
  check((await withKey(apiKey)) === 200, 'the new API key works on /auth/me');
  await go(page, '/ui/account', 'account-api-key');
  check(!(await page.content()).includes(apiKey), 'the account page shows the key again');
  const keyRows = page.locator('#api-keys-table tbody tr');
  check((await keyRows.count()) === 1, 'the new key is listed');
  await Promise.all([page.waitForURL(/notice=api_key_revoked/), keyRows.first().locator('button').click()]);
  await inspect(page, 'account');
  check((await withKey(apiKey)) === 401, 'the revoked API key still works');

  // Clickjacking: another origin frames the account page; nothing of it renders.
  const framer = await foreignServer(() => `<!doctype html><title>framer</title><iframe id="f" src="${BASE}/ui/account" width="800" height="600"></iframe>`);
  const framerUrl = `http://127.0.0.1:${framer.address().port}/`;
  await page.goto(framerUrl);
  await page.waitForTimeout(500);
  let framed = false;
  for (const f of page.frames()) {
    if (f === page.mainFrame()) continue;
    const title = await f.evaluate(() => document.title).catch(() => '');
    framed = framed || title.includes('Account');
  }
  check(!framed, 'the account page rendered inside a frame on another origin');

  // CSRF from a real foreign page: an auto-submitting form changes nothing.
  const csrfPage = await foreignServer((url) => url.startsWith('/login')
    ? `<!doctype html><form id="f" method="post" action="${BASE}/ui/login"><input name="csrf_token" value="x"><input name="email" value="attacker@example.com"><input name="password" value="${PASSWORD}"></form><script>document.getElementById('f').submit()</script>`
    : `<!doctype html><form id="f" method="post" action="${BASE}/ui/account/profile"><input name="csrf_token" value="x"><input name="display_name" value="CSRFED"></form><script>document.getElementById('f').submit()</script>`);
  const csrfBase = `http://127.0.0.1:${csrfPage.address().port}`;
  await page.goto(`${csrfBase}/profile`);
  await page.waitForLoadState('load');
  await page.waitForTimeout(300);
  await go(page, '/ui/account', 'account');
  check((await page.inputValue('#f-display_name')) === PAYLOAD, 'a foreign form changed the display name');
  // Login CSRF: a visitor who is not signed in is not signed into the attacker's account.
  const victim = await browser.newContext({ viewport: DESKTOP });
  const victimPage = await victim.newPage();
  await victimPage.goto(`${BASE}/ui/login`);
  await victimPage.goto(`${csrfBase}/login`);
  await victimPage.waitForLoadState('load');
  await victimPage.waitForTimeout(300);
  check(!(await victim.cookies(BASE)).some((c) => c.name === '__Host-rampart_session'), 'a foreign page signed the visitor in');
  await victim.close();
  framer.close();
  csrfPage.close();

  // Forgot / reset by the mailed link, then sign in with the new password.
  await signOut(page);
  await go(page, '/ui/forgot', 'forgot');
  await page.fill('#f-email', email);
  await Promise.all([page.waitForURL(/notice=reset_sent/), page.click('main button[type=submit]')]);
  await inspect(page, 'forgot-sent');
  const reset = linkIn((await waitForMail(email, 'Reset your password')).body, '/ui/reset');
  await go(page, reset, 'reset');
  check(!page.url().includes('token='), 'the reset token is removed from the address bar');
  await page.fill('#f-new_password', PASSWORD);
  await Promise.all([page.waitForURL(/notice=reset_done/), page.click('main button[type=submit]')]);
  await signIn(page, email, PASSWORD, () => recovery[2]);

  await browser.close();
  finish();
}

main().catch(crashed(() => globalThis.__page));
