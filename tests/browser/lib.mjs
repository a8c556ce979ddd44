// What pages.mjs and admin.mjs share: the check list, the payloads, an independent TOTP, the
// watch on every page (dialogs, the payload's global, CSP violations), axe-core and screenshots
// after every navigation, and sign-in / sign-out through the pages.

import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const BASE = process.env.RAMPART_BASE_URL;
const SHOTS = process.env.RAMPART_SCREENSHOTS || 'target/browser-screenshots';
// At most 100 characters (the display name's limit); each part runs script if ever unescaped.
export const PAYLOAD = `"><script>pwned=1</script><img src=x onerror=pwned=1><svg onload=alert(1)>{{7*7}}`;
export const LINK_PAYLOAD = `<a href="javascript:pwned=1">x</a>'><iframe src=javascript:alert(1)>`;
export const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };

const failures = [];
let checks = 0;
export function check(ok, what) {
  checks += 1;
  if (!ok) {
    failures.push(what);
    console.log(`FAIL ${what}`);
  }
}

// RFC 6238 TOTP (SHA-1, 6 digits, 30 s), computed here independently of the server.
function base32(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of s.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}
export function totp(secret, unixSeconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return n.toString().padStart(6, '0');
}

export function launch() {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
}

// Every page is watched: dialogs, the payload's global, and CSP violations (our pages must raise
// none at all, so any violation is either an injected script or a bug of ours).
export async function watch(context) {
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  context.on('page', (p) => p.on('dialog', async (d) => {
    check(false, `a dialog opened on ${p.url()}: ${d.message()}`);
    await d.dismiss();
  }));
}

const visited = new Set();
// After every navigation: no script ran, no violation, axe has no serious/critical finding, and
// (once per page) screenshots at both widths.
export async function inspect(page, name) {
  await page.waitForLoadState('load');
  const state = await page.evaluate(() => ({ pwned: window.pwned, violations: window.__violations || [] }));
  check(state.pwned === undefined, `${name}: injected script ran (window.pwned set) at ${page.url()}`);
  check(state.violations.length === 0, `${name}: CSP violations ${JSON.stringify(state.violations)} at ${page.url()}`);
  const axe = await page.evaluate(async (src) => {
    // Through the debugging protocol, not a page script: the page CSP stays as it is.
    (0, eval)(src);
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }, AXE).catch((e) => [`axe failed: ${e}`]);
  check(axe.length === 0, `${name}: accessibility ${JSON.stringify(axe)}`);
  if (!visited.has(name)) {
    visited.add(name);
    const size = page.viewportSize();
    await page.screenshot({ path: `${SHOTS}/${name}-desktop.png`, fullPage: true });
    await page.setViewportSize(PHONE);
    await page.screenshot({ path: `${SHOTS}/${name}-phone.png`, fullPage: true });
    await page.setViewportSize(size);
  }
}

export async function go(page, path, name) {
  await page.goto(path.startsWith('http') ? path : BASE + path);
  await inspect(page, name);
}

export async function submit(page, name) {
  await Promise.all([page.waitForLoadState('load'), page.locator('main button[type=submit]').first().click()]);
  await inspect(page, name);
}

export async function signIn(page, email, password, second) {
  await go(page, '/ui/login', 'login');
  await page.fill('#f-email', email);
  await page.fill('#f-password', password);
  await Promise.all([page.waitForURL(/\/ui\/(account|mfa)/), page.click('main button[type=submit]')]);
  if (page.url().includes('/ui/mfa')) {
    await inspect(page, 'mfa');
    check(!!second, 'a second factor was asked for unexpectedly');
    await page.fill('#f-code', second());
    await Promise.all([page.waitForURL(/\/ui\/account/), page.click('main button[type=submit]')]);
  }
  await inspect(page, 'account');
}

// On /ui/account: two-step verification turned on with a code computed here; the secret, when
// it was enabled, and the recovery codes shown.
export async function enableTotp(page, password) {
  await Promise.all([page.waitForURL(/\/ui\/account\/mfa/), page.click('form[action="/ui/account/mfa/setup"] button')]);
  await inspect(page, 'mfa-setup');
  const secret = (await page.textContent('#totp-secret')).trim();
  const enabledAt = Date.now() / 1000;
  await page.fill('#f-code', totp(secret, enabledAt));
  await page.fill('#f-password', password);
  await submit(page, 'recovery-codes');
  const recovery = await page.locator('#recovery-codes code').allTextContents();
  return { secret, enabledAt, recovery };
}

export async function signOut(page) {
  await Promise.all([page.waitForURL(/\/ui\/login/), page.click('nav button[type=submit]')]);
}

// The end of a script: the count, every failure again, and the exit code.
export function finish() {
  console.log(`browser checks: ${checks - failures.length} ok, ${failures.length} failing`);
  if (failures.length) {
    for (const f of failures) console.log(`  - ${f}`);
    process.exit(1);
  }
}

// A thrown error (a selector that never matched, a navigation that timed out) with the page it
// happened on.
export function crashed(page) {
  return async (e) => {
    console.log(`FAIL ${e.stack || e}`);
    if (page()) console.log(`page: ${page().url()}\n${await page().textContent('main').catch(() => '')}`);
    process.exit(1);
  };
}
