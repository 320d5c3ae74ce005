// sam2c operator panel: requests to the JSON API with the access token, protected files
// as object URLs. Loaded before app.js (uses its t() and setStatus() at run time).
'use strict';

// The access token (sam2c serve --token) is asked once, on the first 401, and kept for
// this tab only (sessionStorage); concurrent requests share the one question.
let token = sessionStorage.getItem('sam2c.token') || '';
let tokenAsk = null;
function askToken() {
  if (!tokenAsk) {
    tokenAsk = new Promise((resolve) => {
      const v = window.prompt(t('token_prompt'));
      if (v && v.trim()) { token = v.trim(); sessionStorage.setItem('sam2c.token', token); }
      resolve(!!(v && v.trim()));
    }).finally(() => { setTimeout(() => { tokenAsk = null; }, 0); });
  }
  return tokenAsk;
}

async function authFetch(path, opts) {
  for (let tries = 0; ; tries++) {
    const sent = token;
    const o = Object.assign({}, opts, { headers: Object.assign({}, opts.headers || {}) });
    if (sent) o.headers.Authorization = 'Bearer ' + sent;
    const r = await fetch(path, o);
    if (r.status !== 401 || tries >= 3) return r;
    if (token === sent && !(await askToken())) return r;
  }
}

// A protected file as an object URL (images, exports): plain links cannot send the token.
async function blobUrl(path) {
  const r = await authFetch(path, { method: 'GET' });
  if (!r.ok) {
    let e = null;
    try { e = (await r.json()).error; } catch (x) { e = null; }
    throw new Error(e || (r.status + ' ' + r.statusText));
  }
  return URL.createObjectURL(await r.blob());
}

async function download(path, name) {
  try {
    const url = await blobUrl(path);
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) { setStatus(t('error') + ': ' + e.message, true); }
}

async function api(method, path, body, headers) {
  const opts = { method, headers: headers || {} };
  if (body !== undefined) {
    if (body instanceof Blob) opts.body = body;
    else { opts.body = JSON.stringify(body); opts.headers['Content-Type'] = 'application/json'; }
  }
  const r = await authFetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) throw new Error((data && data.error) || (r.status + ' ' + r.statusText));
  return data;
}
