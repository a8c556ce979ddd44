// Rampart's pages: the one script, loaded as a module from 'self'. Every page works without it
// except the two that read a mailed token from the URL fragment (reset, verify): a fragment never
// reaches the server, so only the page itself can put the token into the form.
//
// The page CSP has `require-trusted-types-for 'script'`: nothing here hands a string to an HTML
// or script sink. Only `value`, `hidden`, `textContent` and focus are touched (and, for the recovery
// codes shown after a first passkey, elements made with `createElement`), and forms are
// submitted.
//
// Passkeys: the WebAuthn ceremonies need the browser's API, so the script runs them (sign-in,
// adding a passkey, the passkey as a second factor); everything else about passkeys is a plain
// page or form.

function fillTokenFromFragment() {
  const input = document.querySelector('input[data-fragment-token]');
  if (!input) return;
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get('token');
  const form = input.form;
  const missing = document.getElementById('token-missing');
  const nojs = document.getElementById('needs-js');
  if (nojs) nojs.hidden = true;
  if (token) {
    input.value = token;
    if (form) form.hidden = false;
    if (missing) missing.hidden = true;
    // Drop the token from the address bar and history: nothing later (a bookmark, a shared
    // screen) should carry it.
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
  } else if (!input.value) {
    if (missing) missing.hidden = false;
  } else if (form) {
    form.hidden = false;
  }
}

function focusErrorSummary() {
  const summary = document.querySelector('.error-summary');
  if (summary) summary.focus();
}

// "Copy" next to a secret shown once (a new API key): the button stays hidden without the
// script, and the text stays selectable either way. Only `textContent` is read and written.
function copyButtons() {
  for (const button of document.querySelectorAll('button[data-copy]')) {
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = 'Copied';
      } catch {
        button.textContent = 'Select the key and copy it';
      }
    });
  }
}

// ---- Passkeys ----

// base64url (no padding) <-> bytes, for browsers without the WebAuthn JSON helpers.
function fromB64u(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
function toB64u(buffer) {
  let bin = '';
  for (const b of new Uint8Array(buffer)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
const withIds = (list) => (list || []).map((c) => ({ ...c, id: fromB64u(c.id) }));

// The server sends the options in WebAuthn's JSON form (base64url strings for the binary members).
function creationOptions(json) {
  if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function') {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: fromB64u(json.challenge),
    user: { ...json.user, id: fromB64u(json.user.id) },
    excludeCredentials: withIds(json.excludeCredentials),
  };
}
function requestOptions(json) {
  if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function') {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  return { ...json, challenge: fromB64u(json.challenge), allowCredentials: withIds(json.allowCredentials) };
}

// The credential in the JSON form the server reads (RegistrationResponseJSON /
// AuthenticationResponseJSON).
function credentialJSON(cred) {
  if (typeof cred.toJSON === 'function') return cred.toJSON();
  const r = cred.response;
  const response = { clientDataJSON: toB64u(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64u(r.attestationObject);
    response.transports = typeof r.getTransports === 'function' ? r.getTransports() : [];
  } else {
    response.authenticatorData = toB64u(r.authenticatorData);
    response.signature = toB64u(r.signature);
    response.userHandle = r.userHandle ? toB64u(r.userHandle) : null;
  }
  return {
    id: cred.id,
    rawId: toB64u(cred.rawId),
    type: cred.type,
    response,
    clientExtensionResults: cred.getClientExtensionResults(),
  };
}

// A same-origin JSON POST. The pages answer `Referrer-Policy: no-referrer`, under which a
// browser sends `Origin: null` with a POST; the guard takes `null` only under /ui. This request
// asks for 'same-origin' instead, so our own origin is sent, to our own origin only: the
// /auth endpoints see exactly what any same-origin client sends, and nothing is loosened.
async function postJSON(path, body, csrf) {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (csrf) headers['X-CSRF-Token'] = csrf;
  const res = await fetch(path, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
    credentials: 'same-origin',
    referrerPolicy: 'same-origin',
    cache: 'no-store',
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    // An error under /ui is a page, not JSON: the status says enough.
  }
  return { ok: res.ok, status: res.status, data };
}

// What to tell the visitor about a refused request: the API's own words when it sent them.
function refusal({ status, data }) {
  if (data && typeof data.detail === 'string' && data.detail) {
    const d = data.detail;
    return `${d.charAt(0).toUpperCase()}${d.slice(1)}.`;
  }
  if (status === 429) return 'Too many attempts. Wait a minute, then try again.';
  if (status === 401) return 'This sign-in has expired. Please sign in again.';
  if (status === 403) return 'This page has expired. Reload it and try again.';
  return 'Something went wrong. Try again in a moment.';
}

// What to tell the visitor when the browser's ceremony failed or was cancelled.
function ceremonyError(e) {
  if (e && e.name === 'InvalidStateError') return 'This device already holds a passkey for this account.';
  if (e && e.name === 'NotAllowedError') {
    return 'The passkey was not used: it was cancelled, timed out, or this device has no passkey for this site.';
  }
  return 'Your browser could not use a passkey here.';
}

function showError(area, message) {
  if (!area) return;
  area.textContent = message;
  area.hidden = !message;
}

// A step of a ceremony that was refused, with the sentence to show.
class Refused extends Error {}

// POST to the server; its JSON answer, or Refused with the reason.
async function ask(path, body, csrf) {
  const answer = await postJSON(path, body, csrf);
  if (!answer.ok || !answer.data) throw new Refused(refusal(answer));
  return answer.data;
}

// The browser's part (`navigator.credentials.create` / `get`); Refused when it failed.
async function inBrowser(call) {
  try {
    return await call();
  } catch (e) {
    throw new Refused(ceremonyError(e));
  }
}

// A button that runs a ceremony: the error area cleared, the button disabled meanwhile, a refusal
// or a network failure shown.
function onCeremony(button, area, steps) {
  button.addEventListener('click', async () => {
    showError(area, '');
    button.disabled = true;
    try {
      await steps();
    } catch (e) {
      showError(area, e instanceof Refused ? e.message : 'The server could not be reached. Try again in a moment.');
    } finally {
      button.disabled = false;
    }
  });
}

// /ui/login: the button, and the passkeys the browser offers in the email field's autofill
// (conditional mediation). Both end at POST /auth/passkeys/login/finish, which sets the session.
function passkeySignIn() {
  const box = document.getElementById('passkey-signin');
  if (!box || !window.PublicKeyCredential) return;
  const button = document.getElementById('passkey-signin-button');
  const area = document.getElementById('passkey-error');
  box.hidden = false;
  let autofill = null; // { controller, done }: the pending conditional request, if any

  async function finish(started, credential) {
    const body = { challenge_id: started.challenge_id, credential: credentialJSON(credential) };
    await ask('/auth/passkeys/login/finish', body);
    window.location.assign('/ui/account');
  }

  async function startAutofill() {
    if (typeof PublicKeyCredential.isConditionalMediationAvailable !== 'function') return;
    if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
    const controller = new AbortController();
    const done = (async () => {
      const started = await ask('/auth/passkeys/login/start', {});
      if (controller.signal.aborted) return;
      const credential = await inBrowser(() => navigator.credentials.get({
        mediation: 'conditional',
        publicKey: requestOptions(started.options),
        signal: controller.signal,
      }));
      if (credential) await finish(started, credential);
    })().catch((e) => {
      if (!controller.signal.aborted && e instanceof Refused) showError(area, e.message);
    });
    autofill = { controller, done };
  }

  onCeremony(button, area, async () => {
    // One WebAuthn request at a time: the autofill one is ended before the button's starts.
    if (autofill) {
      autofill.controller.abort();
      await autofill.done;
      autofill = null;
    }
    const started = await ask('/auth/passkeys/login/start', {});
    const credential = await inBrowser(() => navigator.credentials.get({ publicKey: requestOptions(started.options) }));
    await finish(started, credential);
  });
  startAutofill().catch(() => {});
}

// The recovery codes that came with a first passkey, shown once in the prepared element: each
// one a new `li` whose `code` gets the text (no HTML sink). False when the page has no place for
// them (then the reload would lose them, so the caller does not reload).
function showRecoveryCodes(codes) {
  const box = document.getElementById('passkey-recovery');
  const list = document.getElementById('passkey-recovery-codes');
  if (!box || !list) return false;
  list.replaceChildren();
  for (const c of codes) {
    const item = document.createElement('li');
    const code = document.createElement('code');
    code.textContent = String(c);
    item.append(code);
    list.append(item);
  }
  box.hidden = false;
  box.focus();
  return true;
}

// /ui/account: "Add a passkey" (register/start with this session's CSRF token, the browser's
// ceremony, register/finish), then the page again with the new passkey in its list; or, when the
// answer carries recovery codes (the account's first second factor), those codes, shown once.
function passkeyAdd() {
  const box = document.getElementById('passkey-add');
  if (!box || !window.PublicKeyCredential) return;
  const button = document.getElementById('passkey-add-button');
  const nameInput = document.getElementById('passkey-add-name');
  const csrf = box.dataset.csrf;
  box.hidden = false;
  onCeremony(button, document.getElementById('passkey-error'), async () => {
    const name = nameInput.value.trim();
    const body = name ? { name } : {};
    const started = await ask('/auth/passkeys/register/start', body, csrf);
    const credential = await inBrowser(() => navigator.credentials.create({ publicKey: creationOptions(started.options) }));
    const finish = { challenge_id: started.challenge_id, credential: credentialJSON(credential), ...body };
    const added = await ask('/auth/passkeys/register/finish', finish, csrf);
    if (Array.isArray(added.recovery_codes) && added.recovery_codes.length > 0) {
      if (showRecoveryCodes(added.recovery_codes)) {
        box.hidden = true;
        return;
      }
    }
    window.location.assign('/ui/account?notice=passkey_added');
  });
}

// /ui/mfa: a passkey instead of a code. The pending login stays in its HttpOnly cookie; the
// ceremony starts at /ui/mfa/passkey/start (the form's pre-session token as X-CSRF-Token) and
// the assertion goes back in the hidden form, whose answer is a page like the code form's.
function passkeySecondFactor() {
  const box = document.getElementById('passkey-mfa');
  if (!box || !window.PublicKeyCredential) return;
  const form = document.getElementById('passkey-mfa-form');
  const field = (name) => form.elements.namedItem(name);
  box.hidden = false;
  onCeremony(document.getElementById('passkey-mfa-button'), document.getElementById('passkey-error'), async () => {
    const started = await ask('/ui/mfa/passkey/start', {}, field('csrf_token').value);
    const credential = await inBrowser(() => navigator.credentials.get({ publicKey: requestOptions(started.options) }));
    field('challenge_id').value = started.challenge_id;
    field('credential').value = JSON.stringify(credentialJSON(credential));
    form.submit();
  });
}

fillTokenFromFragment();
copyButtons();
passkeySignIn();
passkeyAdd();
passkeySecondFactor();
// A link opened in a tab that already shows this page only changes the fragment.
window.addEventListener('hashchange', fillTokenFromFragment);
focusErrorSummary();
