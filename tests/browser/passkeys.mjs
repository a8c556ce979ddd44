// Passkeys in a real headless Chromium, with the DevTools WebAuthn domain's virtual
// authenticator (CTAP2, internal, resident keys, user verification): enrol on /ui/account (the
// first passkey's recovery codes shown once, on the page), sign out, sign in with the passkey
// button and no email, rename it, complete a password sign-in with one of those recovery codes,
// use the passkey as the second factor of a user with TOTP on; a refused user verification and an authenticator that never enrolled both
// leave the visitor signed out with the error shown; remove it. axe-core, CSP violations and
// screenshots after every navigation, as in pages.mjs.
//
// Started by crates/rampart/tests/api/browser.rs with RAMPART_BASE_URL (http://localhost:<port>,
// the server's public_url: WebAuthn's rp id is its host), RAMPART_SCREENSHOTS, and the user to
// work with: RAMPART_USER_EMAIL, RAMPART_PASSWORD.
// Exits 1 with every failure listed, 0 when all checks passed.

import {
  BASE, DESKTOP, check, totp, launch, watch, inspect, go, signIn, signOut, enableTotp, finish, crashed,
} from './lib.mjs';

const EMAIL = process.env.RAMPART_USER_EMAIL;
const PASSWORD = process.env.RAMPART_PASSWORD;
// A passkey name that runs script if it is ever shown unescaped (at most 64 characters).
const NAME_PAYLOAD = '"><img src=x onerror=pwned=1>';

const AUTHENTICATOR = {
  protocol: 'ctap2',
  transport: 'internal',
  hasResidentKey: true,
  hasUserVerification: true,
  isUserVerified: true,
  automaticPresenceSimulation: true,
};

// The virtual authenticator answers a conditional-mediation (autofill) request at once, as if
// the visitor had picked the passkey from the email field's suggestions: left on, every visit
// to the sign-in page would sign in by itself. So the page sees autofill as available only
// while this tab's sessionStorage says `autofill=on` (the browser's own answer still counts).
// An init script, through the debugging protocol: the page CSP is untouched.
async function gateAutofill(page) {
  await page.addInitScript(() => {
    if (!window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable) return;
    const real = PublicKeyCredential.isConditionalMediationAvailable.bind(PublicKeyCredential);
    PublicKeyCredential.isConditionalMediationAvailable = async () => sessionStorage.getItem('autofill') === 'on' && real();
  });
}
const autofill = (page, on) => page.evaluate((v) => sessionStorage.setItem('autofill', v), on ? 'on' : 'off');

async function signedInAs(context) {
  return (await context.cookies(BASE)).some((c) => c.name === '__Host-rampart_session');
}

// The passkey button on the sign-in page; `landed` is where it should end up.
async function passkeyButton(page, landed) {
  await go(page, '/ui/login', 'login-passkey');
  check(await page.isVisible('#passkey-signin-button'), 'the passkey button is shown with the script and WebAuthn');
  const email = await page.getAttribute('#f-email', 'autocomplete');
  check(email === 'username webauthn', `the email field offers passkeys in its autofill (${email})`);
  if (landed) {
    await Promise.all([page.waitForURL(landed), page.click('#passkey-signin-button')]);
    return;
  }
  await page.click('#passkey-signin-button');
  await page.waitForSelector('#passkey-error:not([hidden])', { timeout: 30000 });
}

async function main() {
  const browser = await launch();
  const context = await browser.newContext({ viewport: DESKTOP });
  await watch(context);
  const page = await context.newPage();
  globalThis.__page = page;
  await gateAutofill(page);
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  let { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: AUTHENTICATOR });

  // Enrol, signed in by password.
  await signIn(page, EMAIL, PASSWORD);
  check(await page.isVisible('#no-passkeys'), 'a new account lists no passkeys');
  check(await page.isVisible('#passkey-add-button'), 'the add button is shown with the script and WebAuthn');
  await page.fill('#passkey-add-name', NAME_PAYLOAD);
  // The first passkey is the account's first second factor: its recovery codes are shown once,
  // on this page (no reload that would lose them), written by the script with textContent.
  await page.click('#passkey-add-button');
  await page.waitForSelector('#passkey-recovery:not([hidden])', { timeout: 30000 });
  await inspect(page, 'account-passkey-recovery-codes');
  check(new URL(page.url()).pathname === '/ui/account' && !page.url().includes('notice='), 'the codes page did not reload');
  const recoveryCodes = (await page.locator('#passkey-recovery-codes code').allTextContents()).map((c) => c.trim());
  check(recoveryCodes.length === 10 && new Set(recoveryCodes).size === 10, `ten recovery codes are shown (${recoveryCodes.length})`);
  check(recoveryCodes.every((c) => /^[a-z0-9]{4}(-[a-z0-9]{4}){3}$/.test(c)), 'each shown as a plain code');
  check((await page.textContent('#passkey-recovery')).includes('shown only this once'), 'with the save-them-now message');
  await Promise.all([page.waitForURL(/notice=passkey_added/), page.click('#passkey-recovery a.button')]);
  await inspect(page, 'account-passkey');
  check(!(await page.isVisible('#passkey-recovery')), 'the codes are not shown again');
  const rows = page.locator('#passkeys-table tbody tr');
  check((await rows.count()) === 1, 'the new passkey is listed');
  check((await rows.first().locator('td').first().textContent()).trim() === NAME_PAYLOAD, 'its name is shown as typed');
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  check(credentials.length === 1 && credentials[0].isResidentCredential, 'the authenticator holds one discoverable credential');
  check(credentials.length === 1 && credentials[0].rpId === new URL(BASE).hostname, 'for our host as rp id');

  // Sign out, then in with the passkey alone, no email typed: first as the email field's
  // autofill offers it (conditional mediation, started when the page loads), then by the button.
  await signOut(page);
  check(!(await signedInAs(context)), 'signed out');
  await autofill(page, true);
  await Promise.all([page.waitForURL(/\/ui\/account$/), page.goto(`${BASE}/ui/login`)]);
  await inspect(page, 'account');
  check((await page.textContent('main .lead')).includes(EMAIL), 'signed in by the autofilled passkey');
  await autofill(page, false);
  await signOut(page);
  await passkeyButton(page, /\/ui\/account$/);
  await inspect(page, 'account');
  check((await page.textContent('main .lead')).includes(EMAIL), 'signed in by passkey as the user who enrolled it');

  // Rename it.
  await rows.first().locator('input[name=name]').fill('Work laptop');
  await Promise.all([page.waitForURL(/notice=passkey_renamed/), rows.first().locator('form[action$="/rename"] button').click()]);
  await inspect(page, 'account');
  check((await rows.first().locator('td').first().textContent()).trim() === 'Work laptop', 'the passkey is renamed');
  // An empty name is refused on the page, nothing renamed.
  await rows.first().locator('input[name=name]').fill('   ');
  await page.evaluate(() => { for (const i of document.querySelectorAll('#passkeys-table input[name=name]')) i.required = false; });
  await submitIn(page, rows.first().locator('form[action$="/rename"] button'), 'account-rename-refused');
  check(await page.isVisible('.error-summary'), 'an empty passkey name is refused with an error');

  // Every passkey lost: the password, then one of the recovery codes shown at enrolment, on the
  // second-factor page, which asks this passkey-only user for a recovery code (there is no app).
  await signOut(page);
  await go(page, '/ui/login', 'login');
  await page.fill('#f-email', EMAIL);
  await page.fill('#f-password', PASSWORD);
  await Promise.all([page.waitForURL(/\/ui\/mfa/), page.click('main form[action="/ui/login"] button[type=submit]')]);
  await inspect(page, 'mfa-recovery-code');
  const label = (await page.textContent('label[for="f-code"]')).trim();
  check(label === 'Recovery code', `a passkey-only user is asked for a recovery code (${label})`);
  check(!(await page.textContent('main .lead')).includes('authenticator app'), 'and not for an app they do not have');
  await page.fill('#f-code', recoveryCodes[0]);
  await Promise.all([page.waitForURL(/\/ui\/account$/), page.click('main form[action="/ui/mfa"] button[type=submit]')]);
  await inspect(page, 'account');
  check(await signedInAs(context), 'a recovery code completed the second factor of a passkey-only user');

  // TOTP on, then a password sign-in answers its second factor with the passkey.
  const { secret, enabledAt } = await enableTotp(page, PASSWORD);
  await go(page, '/ui/account', 'account');
  await signOut(page);
  await go(page, '/ui/login', 'login');
  await page.fill('#f-email', EMAIL);
  await page.fill('#f-password', PASSWORD);
  await Promise.all([page.waitForURL(/\/ui\/mfa/), page.click('main form[action="/ui/login"] button[type=submit]')]);
  await inspect(page, 'mfa-passkey');
  check(await page.isVisible('#passkey-mfa-button'), 'the second-factor page offers the passkey');
  await Promise.all([page.waitForURL(/\/ui\/account$/), page.click('#passkey-mfa-button')]);
  await inspect(page, 'account');
  check(await signedInAs(context), 'the passkey completed the second factor');
  const used = (await rows.first().locator('td[data-label="Last used"]').textContent()).trim();
  check(used !== 'Never', `the passkey's last use is shown (${used})`);

  // User verification refused by the authenticator: no sign-in.
  await signOut(page);
  await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
  await passkeyButton(page, null);
  await inspect(page, 'login-passkey-refused');
  check(page.url().includes('/ui/login'), 'still on the sign-in page without user verification');
  check(!(await signedInAs(context)), 'no session without user verification');
  await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: true });

  // Another authenticator, which never enrolled: refused.
  await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
  ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: AUTHENTICATOR }));
  await passkeyButton(page, null);
  await inspect(page, 'login-passkey-refused');
  check((await page.textContent('#passkey-error')).trim().length > 0, 'the refusal is shown');
  check(!(await signedInAs(context)), 'a passkey that never enrolled signs nobody in');

  // The password and code still work; the enrolled passkey is removed (a fresh sign-in).
  await signIn(page, EMAIL, PASSWORD, () => totp(secret, enabledAt + 30));
  check((await rows.count()) === 1, 'the passkey is still listed');
  await Promise.all([page.waitForURL(/notice=passkey_removed/), rows.first().locator('form[action$="/remove"] button').click()]);
  await inspect(page, 'account');
  check(await page.isVisible('#no-passkeys'), 'the passkey is removed');

  await browser.close();
  finish();
}

// Clicks a submit button and inspects the page it answers (whatever its status).
async function submitIn(page, button, name) {
  const action = await button.evaluate((b) => b.form.action);
  await Promise.all([page.waitForURL(action), button.click()]);
  await inspect(page, name);
}

main().catch(crashed(() => globalThis.__page));
