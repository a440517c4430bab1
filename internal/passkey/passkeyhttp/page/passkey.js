// The passkey sign-in page: email code, passkey sign-in (including browser autofill) and adding
// a passkey once signed in. No dependencies; talks to Latchkey's public API only.

const params = new URLSearchParams(location.search);
const clientID = params.get("client_id") || "";
const api = "/api/v1/auth/passwordless/";
const tokenKey = "latchkey.session";

const $ = (id) => document.getElementById(id);

function say(text, isError = false) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

function session() {
  try { return JSON.parse(sessionStorage.getItem(tokenKey)); } catch { return null; }
}

async function call(method, path, { body, token, proof } = {}) {
  const url = new URL(path, location.origin);
  url.searchParams.set("client_id", clientID);
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers["Authorization"] = "Bearer " + token;
  if (proof) headers["X-Altcha"] = proof;
  // The honeypot's value goes with every request; the server refuses requests that filled it.
  const trap = $("website");
  if (trap && trap.value) headers["X-Latchkey-Honeypot"] = trap.value;
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  // Asked to prove it is no bot: solve the server's own proof of work and try once more, so
  // that the person never sees the check.
  if (res.status === 403 && data.error_code === "bot_check_required" && !proof) {
    say("Checking your browser…");
    return call(method, path, { body, token, proof: await solveChallenge() });
  }
  if (!res.ok) throw new Error(data.error_description || data.message || data.error_code || ("HTTP " + res.status));
  return data;
}

// --- proof of work (the ALTCHA challenge of GET /api/v1/protect/challenge) ------------------

// solveChallenge finds the number n for which SHA-256(salt + n) is the challenge, hashing in
// batches with Web Crypto, and returns the payload the server expects in X-Altcha.
async function solveChallenge() {
  const ch = await call("GET", "/api/v1/protect/challenge");
  const max = ch.maxnumber || ch.maxNumber || 1000000;
  const started = Date.now();
  const enc = new TextEncoder();
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
  const batch = 500;
  for (let from = 0; from <= max; from += batch) {
    const tries = [];
    for (let n = from; n < from + batch && n <= max; n++) {
      tries.push(crypto.subtle.digest("SHA-256", enc.encode(ch.salt + n)).then((d) => (hex(d) === ch.challenge ? n : -1)));
    }
    const found = (await Promise.all(tries)).find((n) => n >= 0);
    if (found !== undefined) {
      return btoa(JSON.stringify({ algorithm: ch.algorithm, challenge: ch.challenge, number: found,
        salt: ch.salt, signature: ch.signature, took: Date.now() - started }));
    }
  }
  throw new Error("could not solve the server's challenge");
}

// --- base64url <-> ArrayBuffer ---------------------------------------------------------------

function fromB64u(s) {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
}

function toB64u(buf) {
  if (!buf) return null;
  let s = "";
  for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function creationOptions(o) {
  return {
    ...o,
    challenge: fromB64u(o.challenge),
    user: { ...o.user, id: fromB64u(o.user.id) },
    excludeCredentials: (o.excludeCredentials || []).map((c) => ({ ...c, id: fromB64u(c.id) })),
  };
}

function requestOptions(o) {
  return {
    ...o,
    challenge: fromB64u(o.challenge),
    allowCredentials: (o.allowCredentials || []).map((c) => ({ ...c, id: fromB64u(c.id) })),
  };
}

function registrationJSON(cred) {
  const r = cred.response;
  return {
    id: cred.id, rawId: toB64u(cred.rawId), type: cred.type,
    authenticatorAttachment: cred.authenticatorAttachment || undefined,
    clientExtensionResults: cred.getClientExtensionResults(),
    response: {
      clientDataJSON: toB64u(r.clientDataJSON), attestationObject: toB64u(r.attestationObject),
      transports: r.getTransports ? r.getTransports() : [],
    },
  };
}

function assertionJSON(cred) {
  const r = cred.response;
  return {
    id: cred.id, rawId: toB64u(cred.rawId), type: cred.type,
    authenticatorAttachment: cred.authenticatorAttachment || undefined,
    clientExtensionResults: cred.getClientExtensionResults(),
    response: {
      clientDataJSON: toB64u(r.clientDataJSON), authenticatorData: toB64u(r.authenticatorData),
      signature: toB64u(r.signature), userHandle: toB64u(r.userHandle),
    },
  };
}

// --- signed-in state ---------------------------------------------------------------------------

function signedIn(result) {
  const s = { token: result.access_token, who: (result.user && result.user.identifier) || "" };
  sessionStorage.setItem(tokenKey, JSON.stringify(s));
  show();
}

async function show() {
  const s = session();
  $("signed-out").hidden = !!s;
  $("signed-in").hidden = !s;
  if (!s) { startAutofill(); return; }
  stopAutofill();
  $("who").textContent = s.who;
  try {
    const list = await call("GET", api + "passkey/credentials", { token: s.token });
    $("passkeys").replaceChildren(...list.map((p) => {
      const li = document.createElement("li");
      li.textContent = p.Name;
      return li;
    }));
  } catch (e) {
    say(e.message, true);
  }
}

// --- email code --------------------------------------------------------------------------------

let state = "";

$("email-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const res = await call("POST", api + "email-otp/send", { body: { email: $("email").value } });
    state = res.state;
    $("code-form").hidden = false;
    $("code").focus();
    say("We sent a code to your email.");
  } catch (e) { say(e.message, true); }
});

$("code-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const res = await call("POST", api + "email-otp/verify", { body: { state, otp: $("code").value.trim() } });
    if (!res.authenticated) throw new Error("a second factor is required");
    signedIn(res);
    say("");
  } catch (e) { say(e.message, true); }
});

// --- passkey sign-in ---------------------------------------------------------------------------

let autofill = null; // { controller, done } of the pending conditional request

async function finishLogin(opts, cred) {
  const res = await call("POST", api + "passkey/login", { body: { auth_code: opts.auth_code, publicKey: assertionJSON(cred) } });
  if (!res.authenticated) throw new Error("a second factor is required");
  signedIn(res);
  say("");
}

async function startAutofill() {
  if (autofill || !window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable) return;
  if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
  const controller = new AbortController();
  const done = (async () => {
    try {
      const opts = await call("GET", api + "passkey/login");
      const cred = await navigator.credentials.get({
        mediation: "conditional", publicKey: requestOptions(opts.publicKey), signal: controller.signal,
      });
      if (cred) await finishLogin(opts, cred);
    } catch (e) {
      if (e.name !== "AbortError") say(e.message, true);
    }
  })();
  autofill = { controller, done };
}

async function stopAutofill() {
  if (!autofill) return;
  const { controller, done } = autofill;
  autofill = null;
  controller.abort();
  await done; // the browser allows one pending request at a time
}

$("passkey-login").addEventListener("click", async () => {
  $("passkey-login").disabled = true;
  try {
    await stopAutofill();
    const opts = await call("GET", api + "passkey/login");
    const cred = await navigator.credentials.get({ publicKey: requestOptions(opts.publicKey) });
    await finishLogin(opts, cred);
  } catch (e) {
    say(e.message, true);
    startAutofill();
  } finally {
    $("passkey-login").disabled = false;
  }
});

// --- adding a passkey --------------------------------------------------------------------------

$("add-passkey").addEventListener("click", async () => {
  const s = session();
  $("add-passkey").disabled = true;
  try {
    const opts = await call("GET", api + "passkey/register", { token: s.token });
    const cred = await navigator.credentials.create({ publicKey: creationOptions(opts.publicKey) });
    const added = await call("POST", api + "passkey/register", {
      token: s.token, body: { auth_code: opts.auth_code, publicKey: registrationJSON(cred) },
    });
    say("Passkey added: " + added.Name);
    await show();
  } catch (e) {
    say(e.message, true);
  } finally {
    $("add-passkey").disabled = false;
  }
});

$("sign-out").addEventListener("click", async () => {
  const s = session();
  sessionStorage.removeItem(tokenKey);
  if (s) await call("POST", "/api/v1/auth/logout", { token: s.token }).catch(() => {});
  say("Signed out.");
  show();
});

if (!clientID) say("This page needs ?client_id= in its address.", true);
show();
