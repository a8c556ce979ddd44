// The admin console in a real headless Chromium: find a user, lock them (their next sign-in
// fails, with the lock's error), see it in the audit log, unlock (they sign in again), reset
// their two-step verification (their next sign-in asks for no code). On the way, attacker-chosen
// text on every console page (a display name, the User-Agent of a session and of audit events,
// record fields of `orders`, filter query parameters echoed into the forms) runs nothing: no
// dialog, no payload global, no CSP violation; axe-core finds no serious or critical violation on
// any page; screenshots of each page at desktop and 390 px.
//
// Started by crates/rampart/tests/api/browser.rs with:
//   RAMPART_BASE_URL     http://localhost:<port> of a running server (its public_url) declaring
//                        the `orders` resource of docs/configuration.md
//   RAMPART_ADMIN_EMAIL  an admin, and RAMPART_USER_EMAIL a plain user, both with
//   RAMPART_PASSWORD     this password
//   RAMPART_SCREENSHOTS  where to write the screenshots
// Exits 1 with every failure listed, 0 when all checks passed.

import {
  BASE, PAYLOAD, LINK_PAYLOAD, DESKTOP, check, totp, launch, watch, inspect, go, submit, signIn, signOut, finish, crashed,
} from './lib.mjs';

const ADMIN = process.env.RAMPART_ADMIN_EMAIL;
const USER = process.env.RAMPART_USER_EMAIL;
const PASSWORD = process.env.RAMPART_PASSWORD;
const EVIL_AGENT = `Evil ${PAYLOAD} ${LINK_PAYLOAD}`;
let current;

// The user's order, created over the JSON API with a payload in every text field and in the
// User-Agent its audit event records.
async function createOrder() {
  const headers = { 'content-type': 'application/json', 'user-agent': EVIL_AGENT };
  const grant = await fetch(`${BASE}/auth/token`, {
    method: 'POST', headers, body: JSON.stringify({ grant_type: 'password', email: USER, password: PASSWORD }),
  });
  if (!grant.ok) throw new Error(`password grant: ${grant.status} ${await grant.text()}`);
  const { access_token: token } = await grant.json();
  const order = await fetch(`${BASE}/api/orders`, {
    method: 'POST',
    headers: { ...headers, authorization: `Bearer ${token}` },
    body: JSON.stringify({ item: PAYLOAD, quantity: 2, note: LINK_PAYLOAD }),
  });
  if (order.status !== 201) throw new Error(`create order: ${order.status} ${await order.text()}`);
  return (await order.json()).id;
}

// A sign-in that may be refused: where it ended, and the error summary if one is shown.
async function attemptSignIn(page, email) {
  await go(page, '/ui/login', 'login');
  await page.fill('#f-email', email);
  await page.fill('#f-password', PASSWORD);
  await Promise.all([page.waitForLoadState('load'), page.click('main button[type=submit]')]);
  await page.waitForLoadState('load');
  await inspect(page, 'login-refused');
  const summary = page.locator('.error-summary');
  return { url: page.url(), error: (await summary.count()) ? (await summary.textContent()).trim() : '' };
}

// One action button of the user's page, then back on that page.
async function act(page, label, userUrl) {
  await Promise.all([page.waitForURL(userUrl), page.click(`main button:has-text("${label}")`)]);
  await page.waitForLoadState('load');
}

async function main() {
  const browser = await launch();

  // The user, on a device whose User-Agent is a payload: signs in, takes a payload display name,
  // turns on two-step verification.
  const device = await browser.newContext({ viewport: DESKTOP, userAgent: EVIL_AGENT });
  await watch(device);
  const user = await device.newPage();
  current = user;
  const orderId = await createOrder();
  await signIn(user, USER, PASSWORD);
  await user.fill('#f-display_name', PAYLOAD);
  await Promise.all([user.waitForURL(/notice=saved/), user.click('form[action="/ui/account/profile"] button')]);
  await Promise.all([user.waitForURL(/\/ui\/account\/mfa/), user.click('form[action="/ui/account/mfa/setup"] button')]);
  const secret = (await user.textContent('#totp-secret')).trim();
  const enabledAt = Date.now() / 1000;
  await user.fill('#f-code', totp(secret, enabledAt));
  await user.fill('#f-password', PASSWORD);
  await Promise.all([user.waitForLoadState('load'), user.locator('main button[type=submit]').first().click()]);
  check((await user.locator('#recovery-codes code').count()) === 10, 'the user turned two-step verification on');

  // The admin signs in and finds the user by email.
  const console_ = await browser.newContext({ viewport: DESKTOP });
  await watch(console_);
  const admin = await console_.newPage();
  current = admin;
  await signIn(admin, ADMIN, PASSWORD);
  await go(admin, '/ui/admin', 'admin-overview');
  await go(admin, '/ui/admin/users', 'admin-users');
  await admin.fill('#f-email', USER);
  await Promise.all([admin.waitForURL(/\/ui\/admin\/users\?email=/), admin.click('form.search button[type=submit]')]);
  await inspect(admin, 'admin-users-search');
  const row = admin.locator('tbody tr', { hasText: USER });
  check((await row.count()) === 1, `the search for ${USER} lists the user once`);
  check((await row.locator('td').nth(1).textContent()) === PAYLOAD, 'the display name is listed as typed, as text');
  await Promise.all([admin.waitForURL(/\/ui\/admin\/users\/[0-9a-f-]{36}$/), row.locator('a').first().click()]);
  await inspect(admin, 'admin-user');
  const userUrl = admin.url();
  const userId = userUrl.split('/').pop();
  const fact = (label) => admin.locator(`dt:text-is("${label}") + dd`).textContent();
  check((await fact('Display name')) === PAYLOAD, 'the user page shows the display name as text');
  check((await fact('Two-step verification')) === 'On', 'the user page shows two-step verification on');

  // Lock: the page says so, and the user's next sign-in is refused with the lock's error.
  await act(admin, 'Lock account', userUrl);
  await inspect(admin, 'admin-user-locked');
  check((await fact('Status')).startsWith('Locked until'), 'the user page shows the lock');
  check(await admin.isVisible('main button:has-text("Unlock")'), 'a locked user has an Unlock button');
  const other = await browser.newContext({ viewport: DESKTOP });
  await watch(other);
  const second = await other.newPage();
  current = second;
  const refused = await attemptSignIn(second, USER);
  check(refused.url.includes('/ui/login'), `a locked user's sign-in is refused, ended at ${refused.url}`);
  check(/locked/i.test(refused.error), `the refused sign-in shows the lock error, showed "${refused.error}"`);
  current = admin;

  // The audit log: the lock, by this admin, on this user; the user's own events with their
  // payload User-Agent shown as text.
  await go(admin, `/ui/admin/audit?action=user_locked&actor=${encodeURIComponent(ADMIN)}`, 'admin-audit');
  const lockRow = admin.locator('tbody tr', { hasText: 'user_locked' }).filter({ hasText: userId });
  check((await lockRow.count()) === 1, 'the audit log lists the lock of this user by this admin');
  await go(admin, `/ui/admin/audit?actor=${encodeURIComponent(USER)}`, 'admin-audit-user');
  const agents = await admin.locator('tbody td.user-agent').allTextContents();
  check(agents.includes(EVIL_AGENT), `the user's events show their User-Agent as text, got ${JSON.stringify(agents.slice(0, 3))}`);
  await go(admin, '/ui/admin/audit', 'admin-audit-all');
  check((await admin.locator('tbody td.user-agent', { hasText: 'Evil' }).count()) > 0, 'the unfiltered audit log shows the payload User-Agent');

  // Unlock: the user signs in again (up to the second factor, which the code passes).
  await go(admin, userUrl, 'admin-user');
  await act(admin, 'Unlock', userUrl);
  check(await admin.isVisible('main button:has-text("Lock account")'), 'after unlock the Lock button is back');
  await go(admin, '/ui/admin/audit?action=user_unlocked', 'admin-audit-unlocked');
  check((await admin.locator('tbody tr', { hasText: userId }).count()) >= 1, 'the audit log lists the unlock');
  current = second;
  await signIn(second, USER, PASSWORD, () => totp(secret, enabledAt + 30));
  check(second.url().includes('/ui/account'), 'the unlocked user signs in');
  await signOut(second);

  // Reset the second factor: the page shows it off, and the next sign-in asks for no code.
  current = admin;
  await go(admin, userUrl, 'admin-user');
  await act(admin, 'Reset two-step verification', userUrl);
  check((await fact('Two-step verification')) === 'Off', 'after the reset the user page shows two-step verification off');
  current = second;
  await go(second, '/ui/login', 'login');
  await second.fill('#f-email', USER);
  await second.fill('#f-password', PASSWORD);
  await Promise.all([second.waitForURL(/\/ui\/(account|mfa)/), second.click('main button[type=submit]')]);
  check(second.url().includes('/ui/account'), `after the reset the sign-in asks for no code, ended at ${second.url()}`);
  await other.close();
  current = admin;

  // The user's sessions, ended from the console: the payload-agent device is signed out.
  await act(admin, 'Sign out everywhere', userUrl);
  await user.goto(`${BASE}/ui/account`);
  check(user.url().includes('/ui/login'), 'after "sign out everywhere" the user\'s device is signed out');
  await device.close();

  // Records of `orders`: payload fields in the table, the record page and its edit form; the
  // filter's query parameters echoed into the form.
  await go(admin, '/ui/admin/records', 'admin-records');
  await go(admin, '/ui/admin/records/orders', 'admin-orders');
  check((await admin.locator('tbody td', { hasText: '<script>' }).count()) > 0, 'the orders table shows the payload item as text');
  await go(admin, `/ui/admin/records/orders?item=${encodeURIComponent(PAYLOAD)}&sort=-created_at`, 'admin-orders-filtered');
  check((await admin.inputValue('#f-item')) === PAYLOAD, 'the item filter is echoed as a value, as typed');
  check((await admin.locator('tbody tr').count()) === 1 && (await admin.locator('tbody tr', { hasText: orderId }).count()) === 1,
    'the payload filter matches exactly the one order');
  await go(admin, `/ui/admin/records/orders?item=${encodeURIComponent(LINK_PAYLOAD)}`, 'admin-orders-filtered-empty');
  check((await admin.inputValue('#f-item')) === LINK_PAYLOAD, 'a second payload filter is echoed as typed');
  await go(admin, `/ui/admin/records/orders/${orderId}`, 'admin-order');
  check((await admin.inputValue('#f-item')) === PAYLOAD, 'the edit form shows the item as typed');
  check((await admin.inputValue('#f-note')) === LINK_PAYLOAD, 'the edit form shows the note as typed');

  // Filters of the other pages, echoed (or refused) without running anything.
  await go(admin, `/ui/admin/users?email=${encodeURIComponent(PAYLOAD)}`, 'admin-users-payload');
  check((await admin.inputValue('#f-email')) === PAYLOAD, 'the email search is echoed as typed');
  await go(admin, `/ui/admin/audit?actor=${encodeURIComponent(PAYLOAD)}&since=${encodeURIComponent(LINK_PAYLOAD)}`, 'admin-audit-payload');
  await go(admin, '/ui/admin/policy', 'admin-policy');
  check((await admin.locator('main', { hasText: 'orders' }).count()) === 1, 'the policy page names the orders resource');
  await go(admin, '/ui/admin/keys', 'admin-keys');

  // A service account named with a payload, and a key for it, made and revoked on its page.
  await go(admin, '/ui/admin/users', 'admin-users');
  await admin.fill('#f-name', PAYLOAD);
  await Promise.all([admin.waitForURL(/\/ui\/admin\/users\/[0-9a-f-]+$/), admin.click('form[action="/ui/admin/service-accounts"] button')]);
  await inspect(admin, 'admin-service-account');
  check((await fact('Kind')) === 'Service account', 'the new account is shown as a service account');
  check((await admin.textContent('main h1')) === PAYLOAD, 'the service account page is titled with its name, as text');
  const accountPage = admin.url();
  await admin.fill('#f-name', 'sync');
  await Promise.all([admin.waitForURL(/\/api-keys$/), admin.click('form[action$="/api-keys"] button')]);
  await inspect(admin, 'admin-service-account-key');
  const saKey = (await admin.textContent('#new-api-key')).trim();
  const saStatus = () => fetch(`${BASE}/auth/me`, { headers: { authorization: `Bearer ${saKey}` } }).then((r) => r.status);
  check((await saStatus()) === 200, "the service account's key works");
  await admin.goto(accountPage);
  await Promise.all([admin.waitForURL(accountPage), admin.locator('#api-keys-table button').first().click()]);
  await inspect(admin, 'admin-service-account');
  await go(admin, '/ui/admin/users', 'admin-users-with-service-account');
  check((await admin.locator('tbody a', { hasText: '<script>' }).count()) === 1, 'the service account is listed by its name, as text');
  check((await saStatus()) === 401, "the revoked service-account key still works");

  await browser.close();
  finish();
}

main().catch(crashed(() => current));
