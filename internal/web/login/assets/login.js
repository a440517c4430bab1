// The hosted login page's script: passkeys (autofill and button, and the offer to save one),
// the bot check's proof of work in a worker, the magic-link wait screen's poll and the resend
// countdown. Every form works without it; it never sees a token: the server answers its calls
// with where to go next.

const $ = (id) => document.getElementById(id);
const cfg = $("config")?.dataset || {};
const t = (key, ...args) => {
  let s = cfg[key] || cfg.tGeneric || "";
  for (const a of args) s = s.replace("%d", String(a)).replace("%s", String(a));
  return s;
};

function say(text, isError = false) {
  const m = $("message");
  if (!m) return;
  m.textContent = text;
  m.className = isError ? "status error" : "status";
}

// context is the query that names this sign-in on the page's own routes.
function context() {
  const q = new URLSearchParams();
  if (cfg.legacy) {
    q.set("client_id", cfg.clientId);
    q.set("redirect_uri", cfg.redirect);
  } else {
    q.set("authRequest", cfg.request);
  }
  return q.toString();
}

async function post(path, body) {
  const res = await fetch(path + "?" + context(), {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "Accept": "application/json" },
    body: JSON.stringify({ csrf: cfg.csrf, ...body }),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(data.error_description || data.error_code || ("HTTP " + res.status));
    err.code = data.error_code;
    throw err;
  }
  return data;
}

// --- proof of work -----------------------------------------------------------------------------

// Forms with an altcha field get a solved challenge before they are sent, so the project's bot
// check never stops a person; the worker keeps the page responsive meanwhile.
const proofForms = [...document.querySelectorAll("form")].filter((f) => f.querySelector("[data-altcha]"));
let proof = null;

function solve() {
  if (!proof) {
    proof = (async () => {
      const res = await fetch("/api/v1/protect/challenge?client_id=" + encodeURIComponent(cfg.clientId || ""), {
        headers: { "Accept": "application/json" } });
      if (!res.ok) throw new Error("challenge " + res.status);
      const ch = await res.json();
      return await new Promise((resolve, reject) => {
        const w = new Worker("/login/assets/pow.js");
        w.onmessage = (ev) => { w.terminate(); ev.data.payload ? resolve(ev.data.payload) : reject(new Error(ev.data.error)); };
        w.onerror = (e) => { w.terminate(); reject(new Error(e.message || "worker failed")); };
        w.postMessage(ch);
      });
    })();
  }
  return proof;
}

if (proofForms.length > 0 && window.Worker) {
  solve().then((payload) => {
    for (const f of proofForms) f.querySelector("[data-altcha]").value = payload;
  }).catch(() => { proof = null; });
  for (const f of proofForms) {
    f.addEventListener("submit", async (ev) => {
      const field = f.querySelector("[data-altcha]");
      if (field.value) return;
      ev.preventDefault();
      const submitter = ev.submitter;
      say(t("tSolving"));
      try {
        field.value = await solve();
      } catch {
        proof = null; // sent without a proof: the server says whether one was needed
      }
      say("");
      f.requestSubmit(submitter && submitter.form === f ? submitter : undefined);
    });
  }
}

// --- passkeys -----------------------------------------------------------------------------------

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

function requestOptions(o) {
  return { ...o, challenge: fromB64u(o.challenge),
    allowCredentials: (o.allowCredentials || []).map((c) => ({ ...c, id: fromB64u(c.id) })) };
}

function creationOptions(o) {
  return { ...o, challenge: fromB64u(o.challenge), user: { ...o.user, id: fromB64u(o.user.id) },
    excludeCredentials: (o.excludeCredentials || []).map((c) => ({ ...c, id: fromB64u(c.id) })) };
}

function assertionJSON(cred) {
  const r = cred.response;
  return { id: cred.id, rawId: toB64u(cred.rawId), type: cred.type,
    authenticatorAttachment: cred.authenticatorAttachment || undefined,
    clientExtensionResults: cred.getClientExtensionResults(),
    response: { clientDataJSON: toB64u(r.clientDataJSON), authenticatorData: toB64u(r.authenticatorData),
      signature: toB64u(r.signature), userHandle: toB64u(r.userHandle) } };
}

function registrationJSON(cred) {
  const r = cred.response;
  return { id: cred.id, rawId: toB64u(cred.rawId), type: cred.type,
    authenticatorAttachment: cred.authenticatorAttachment || undefined,
    clientExtensionResults: cred.getClientExtensionResults(),
    response: { clientDataJSON: toB64u(r.clientDataJSON), attestationObject: toB64u(r.attestationObject),
      transports: r.getTransports ? r.getTransports() : [] } };
}

let autofill = null; // the AbortController of the pending conditional request

async function passkeyLogin(conditional) {
  const begun = await post("/login/passkey/begin", { mode: "login", conditional });
  const opts = { publicKey: requestOptions(begun.publicKey) };
  if (conditional) {
    autofill = new AbortController();
    opts.mediation = "conditional";
    opts.signal = autofill.signal;
  }
  let cred;
  try {
    cred = await navigator.credentials.get(opts);
  } catch (e) {
    // Autofill the person did not use (no passkey, dismissed, aborted) is no error to show.
    if (conditional) return;
    throw e;
  }
  if (!cred) return;
  const done = await post("/login/passkey/finish", { mode: "login", credential: assertionJSON(cred) });
  location.assign(done.location);
}

const hasWebAuthn = cfg.passkey && window.PublicKeyCredential && navigator.credentials;

if (hasWebAuthn) {
  const button = $("passkey-login");
  if (button) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      if (autofill) { autofill.abort(); autofill = null; }
      button.disabled = true;
      try {
        await passkeyLogin(false);
      } catch (e) {
        if (e.name !== "AbortError") say(t("tPasskeyFailed"), true);
      } finally {
        button.disabled = false;
      }
    });
  }
  // Autofill: the identifier field offers the site's passkeys where the browser can.
  if ($("identifier") && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then((ok) => {
      if (!ok) return;
      passkeyLogin(true).catch((e) => {
        if (e.name !== "AbortError") say(t("tPasskeyFailed"), true);
      });
    });
  }
  const save = $("passkey-save");
  if (save) {
    save.hidden = false;
    save.addEventListener("click", async () => {
      save.disabled = true;
      try {
        const begun = await post("/login/passkey/begin", { mode: "register" });
        const cred = await navigator.credentials.create({ publicKey: creationOptions(begun.publicKey) });
        const done = await post("/login/passkey/finish", { mode: "register", credential: registrationJSON(cred) });
        location.assign(done.location);
      } catch (e) {
        say(t("tPasskeyFailed"), true);
        save.disabled = false;
      }
    });
  }
}

// --- magic-link wait screen ----------------------------------------------------------------------

if (document.querySelector("main[data-screen=wait]")) {
  // The meta refresh (in <noscript>) is the no-JavaScript fallback; with a script, poll quietly.
  const poll = async () => {
    try {
      const res = await fetch("/login/status?" + context(), { headers: { "Accept": "application/json" }, credentials: "same-origin" });
      const data = await res.json().catch(() => ({}));
      if (data.reload) { location.assign($("wait-check").href); return; }
    } catch { /* offline for a moment: try again */ }
    setTimeout(poll, 2000);
  };
  setTimeout(poll, 2000);
}

// --- resend countdown -----------------------------------------------------------------------------

const resend = document.querySelector("[data-resend-in]");
if (resend) {
  let left = Number(resend.dataset.resendIn) || 0;
  const hint = $("resend-hint");
  const tick = () => {
    if (left <= 0) {
      resend.disabled = false;
      if (hint) hint.textContent = "";
      return;
    }
    resend.disabled = true;
    if (hint) hint.textContent = t("tResendIn", left);
    left--;
    setTimeout(tick, 1000);
  };
  tick();
}
