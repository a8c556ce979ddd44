// Rampart's pages: the one script, loaded as a module from 'self'. Every page works without it
// except the two that read a mailed token from the URL fragment (reset, verify): a fragment never
// reaches the server, so only the page itself can put the token into the form.
//
// The page CSP has `require-trusted-types-for 'script'`: nothing here hands a string to an HTML
// or script sink. Only `value`, `hidden`, `textContent` and focus are touched.

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

fillTokenFromFragment();
copyButtons();
// A link opened in a tab that already shows this page only changes the fragment.
window.addEventListener('hashchange', fillTokenFromFragment);
focusErrorSummary();
