// The API docs pages (/docs: Swagger UI, /redoc: ReDoc): fetch /openapi.json with this
// tab's bridge token (the portal's, or one typed here) and hand it to the vendored viewer.
// Nothing is loaded from outside the bridge.
import { getToken, setToken, url } from './api.js';

const ui = document.body.dataset.ui;
const form = document.getElementById('token-form');

function askForToken(why) {
  if (why) document.getElementById('token-why').textContent = why;
  form.hidden = false;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken(document.getElementById('token').value.trim());
    location.reload();
  }, { once: true });
}

function withToken(req) {
  const token = getToken();
  // same-origin calls only: the token never goes to another host
  if (token && new URL(req.url, location.href).origin === location.origin
      && !req.headers.Authorization) {
    req.headers.Authorization = `Bearer ${token}`;
  }
  return req;
}

async function main() {
  const token = getToken();
  const res = await fetch(url('openapi.json'), {
    cache: 'no-store', headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  if (res.status === 401 || res.status === 403) {
    askForToken(res.status === 401 ? 'This page needs a bridge token with scope read.'
      : 'This token may not read the API description (scope read needed).');
    return;
  }
  if (!res.ok) {
    askForToken(`The bridge answered ${res.status}.`);
    return;
  }
  const spec = await res.json();
  const target = document.getElementById('ui');
  if (ui === 'redoc') {
    window.Redoc.init(spec, { hideDownloadButton: false }, target);
  } else {
    window.SwaggerUIBundle({
      spec, domNode: target, validatorUrl: null, deepLinking: true,
      requestInterceptor: withToken,
    });
  }
  target.dataset.loaded = 'true';
}

main().catch((err) => askForToken(`Could not load the API description: ${err}`));
