// Latchkey login widget: <latchkey-login>, a web component any page can include with
//
//   <script type="module" src="https://AUTH/login/widget.js"></script>
//   <latchkey-login client-id="cli_…" mode="inline" methods="passkey,email-otp,magic-link"></latchkey-login>
//
// Hand-written, dependency-free, served as is by the Latchkey binary (internal/web/widget).
//
// Attributes
//   client-id      the project's client id (required)
//   mode           "inline" (default): sign in here, through Latchkey's JSON API, and fire
//                  latchkey:login with the login result; "redirect": start the OpenID Connect
//                  authorization code flow with PKCE at /v1/authorize
//   redirect-uri   redirect mode: where Latchkey sends the browser back with ?code&state (required)
//   methods        inline mode: comma-separated, any of passkey, email-otp, magic-link
//                  (default: all three), shown in that order
//   organization   redirect mode: the organization to sign in to (sent as organization=)
//   login-hint     redirect mode: the email to prefill (sent as login_hint=)
//   lang           "en" or "de" (else navigator.language); in redirect mode also ui_locales=
//   nonce          the page's CSP nonce, for the <style> fallback of browsers without
//                  constructable stylesheets
//   issuer         the Latchkey origin, when it is not the origin this script was loaded from
//   pow-worker     solve the bot check's proof of work in a Web Worker made from a Blob. Set it
//                  only when the page's CSP allows worker-src blob: (or the page has no CSP): a
//                  script cannot read a header CSP without provoking a violation, so by default
//                  the proof is solved on the main thread, in chunks that yield to the page
//
// Events (bubbling, composed CustomEvents, so they cross the shadow root)
//   latchkey:login         detail: the login result (API.md §2: access_token, refresh_token, user, …)
//   latchkey:mfa-required  detail: {authenticated:false, mfa_required:true, mfa_token, authenticators}
//   latchkey:error         detail: {code, message}
//   latchkey:redirect      detail: {url} (cancelable: preventDefault() stops the navigation)
//
// Styling: CSS custom properties (--latchkey-primary, --latchkey-primary-text,
// --latchkey-secondary, --latchkey-text, --latchkey-muted, --latchkey-background, --latchkey-border, --latchkey-error,
// --latchkey-radius, --latchkey-font, --latchkey-width) and ::part(): container, title, form,
// label, input, button, primary, secondary, divider, status, error.
//
// Redirect mode keeps what the callback needs in sessionStorage (this tab, the app's origin)
// under "latchkey.widget.authorize": {client_id, redirect_uri, issuer, state, nonce,
// code_verifier, created_at}; one pending request at a time, a new one replaces it. The app's
// callback checks ?state= against it and exchanges ?code= with code_verifier at the token
// endpoint; the module exports takeAuthorization(state), which does the check and removes it.

const STORAGE_KEY = "latchkey.widget.authorize";
const API = "/api/v1/auth/passwordless/";
const METHODS = ["passkey", "email-otp", "magic-link"];
const SCOPE = "openid profile email offline_access";
// How often inline magic-link sign-in asks whether the link was opened, and for how long
// (the link's lifetime, API.md §3).
const POLL_MS = 2000;
const POLL_FOR_MS = 15 * 60 * 1000;

const scriptOrigin = new URL(import.meta.url).origin;

// --- translations ------------------------------------------------------------------------------

const MESSAGES = {
  en: {
    title: "Sign in",
    email: "Email",
    sendCode: "Email me a code",
    sendLink: "Email me a link",
    code: "Code from your email",
    verify: "Sign in",
    otherEmail: "Use another email",
    or: "or",
    passkey: "Sign in with a passkey",
    continue: "Continue to sign in",
    codeSent: "We sent a code to {email}.",
    linkSent: "We sent a link to {email}. Open it on any device; this page signs you in.",
    cancel: "Cancel",
    checking: "Checking your browser…",
    working: "One moment…",
    redirecting: "Taking you to the sign-in page…",
    signedIn: "You are signed in.",
    mfa: "Your account needs a second step to sign in.",
    errors: {
      invalid_code: "That code is not right. Check it and try again.",
      flow_dead: "Too many wrong tries. Ask for a new code.",
      flow_not_found: "This code or link has expired. Ask for a new one.",
      flow_collected: "This sign-in was already completed.",
      invalid_email: "Enter a valid email address.",
      account_locked: "Too many attempts. Try again later.",
      too_many_requests: "Too many attempts. Try again later.",
      bot_check_failed: "Your browser could not be verified. Reload the page and try again.",
      login_method_disabled: "This way of signing in is turned off for this app.",
      passkeys_disabled: "Passkeys are turned off for this app.",
      passkey_not_registered: "This passkey is not registered for this app.",
      passkey_verification_failed: "The passkey could not be verified.",
      passkey_cancelled: "Signing in with a passkey was cancelled.",
      passkey_unsupported: "This browser does not support passkeys.",
      user_inactive: "This account is disabled.",
      network_error: "Could not reach the sign-in service. Check your connection.",
      misconfigured: "This sign-in form is not set up correctly.",
      link_expired: "The link has expired. Ask for a new one.",
      unknown: "Something went wrong. Try again.",
    },
  },
  de: {
    title: "Anmelden",
    email: "E-Mail",
    sendCode: "Code per E-Mail senden",
    sendLink: "Link per E-Mail senden",
    code: "Code aus Ihrer E-Mail",
    verify: "Anmelden",
    otherEmail: "Andere E-Mail verwenden",
    or: "oder",
    passkey: "Mit Passkey anmelden",
    continue: "Weiter zur Anmeldung",
    codeSent: "Wir haben einen Code an {email} gesendet.",
    linkSent: "Wir haben einen Link an {email} gesendet. Öffnen Sie ihn auf einem beliebigen Gerät; diese Seite meldet Sie dann an.",
    cancel: "Abbrechen",
    checking: "Ihr Browser wird geprüft…",
    working: "Einen Moment…",
    redirecting: "Sie werden zur Anmeldeseite weitergeleitet…",
    signedIn: "Sie sind angemeldet.",
    mfa: "Ihr Konto verlangt einen zweiten Schritt zur Anmeldung.",
    errors: {
      invalid_code: "Dieser Code ist nicht richtig. Prüfen Sie ihn und versuchen Sie es erneut.",
      flow_dead: "Zu viele falsche Versuche. Fordern Sie einen neuen Code an.",
      flow_not_found: "Dieser Code oder Link ist abgelaufen. Fordern Sie einen neuen an.",
      flow_collected: "Diese Anmeldung wurde bereits abgeschlossen.",
      invalid_email: "Geben Sie eine gültige E-Mail-Adresse ein.",
      account_locked: "Zu viele Versuche. Versuchen Sie es später erneut.",
      too_many_requests: "Zu viele Versuche. Versuchen Sie es später erneut.",
      bot_check_failed: "Ihr Browser konnte nicht geprüft werden. Laden Sie die Seite neu und versuchen Sie es erneut.",
      login_method_disabled: "Diese Anmeldeart ist für diese App ausgeschaltet.",
      passkeys_disabled: "Passkeys sind für diese App ausgeschaltet.",
      passkey_not_registered: "Dieser Passkey ist für diese App nicht registriert.",
      passkey_verification_failed: "Der Passkey konnte nicht geprüft werden.",
      passkey_cancelled: "Die Anmeldung mit Passkey wurde abgebrochen.",
      passkey_unsupported: "Dieser Browser unterstützt keine Passkeys.",
      user_inactive: "Dieses Konto ist deaktiviert.",
      network_error: "Der Anmeldedienst ist nicht erreichbar. Prüfen Sie Ihre Verbindung.",
      misconfigured: "Dieses Anmeldeformular ist nicht richtig eingerichtet.",
      link_expired: "Der Link ist abgelaufen. Fordern Sie einen neuen an.",
      unknown: "Etwas ist schiefgegangen. Versuchen Sie es erneut.",
    },
  },
};

function pickLanguage(attr) {
  for (const tag of [attr, ...(navigator.languages || []), navigator.language]) {
    const base = String(tag || "").toLowerCase().split(/[-_]/)[0];
    if (MESSAGES[base]) return base;
  }
  return "en";
}

// --- styles ------------------------------------------------------------------------------------

// The look of the hosted pages (internal/passkey/passkeyhttp/page), every colour and size
// overridable from the page through a custom property.
const CSS = `
:host { display: block; font: 16px/1.5 var(--latchkey-font, system-ui, sans-serif); color: var(--latchkey-text, #1f2330); }
:host([hidden]) { display: none; }
[hidden] { display: none !important; }
.card { box-sizing: border-box; max-width: var(--latchkey-width, 24rem); background: var(--latchkey-background, #fff);
  border-radius: calc(var(--latchkey-radius, .5rem) * 1.5); padding: 2rem; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
h2 { font-size: 1.25rem; margin: 0 0 1.5rem; font-weight: 600; }
form { margin: 0; }
label { display: block; font-size: .875rem; margin: 1rem 0 .25rem; }
input { width: 100%; box-sizing: border-box; padding: .6rem .75rem; font: inherit; color: inherit; background: #fff;
  border: 1px solid var(--latchkey-border, #c9cdd8); border-radius: var(--latchkey-radius, .5rem); }
input[aria-invalid="true"] { border-color: var(--latchkey-error, #b42318); }
button { display: block; width: 100%; margin-top: 1rem; padding: .65rem; font: inherit; border: 0;
  border-radius: var(--latchkey-radius, .5rem); background: var(--latchkey-primary, #4f46e5);
  color: var(--latchkey-primary-text, #fff); cursor: pointer; }
button.secondary { background: var(--latchkey-secondary, #eef0f6); color: var(--latchkey-text, #1f2330); }
button:disabled { opacity: .6; cursor: default; }
input:focus-visible, button:focus-visible { outline: 2px solid var(--latchkey-primary, #4f46e5); outline-offset: 2px; }
.divider { text-align: center; color: var(--latchkey-muted, #7a8093); font-size: .875rem; margin: 1.5rem 0 .5rem; }
.status { margin: 1rem 0 0; font-size: .875rem; }
.status:empty { margin: 0; } /* still rendered: a live region must stay in the tree to be announced */
.error { margin: 1rem 0 0; font-size: .875rem; color: var(--latchkey-error, #b42318); }
.trap { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }
`;

let sharedSheet = null;

// applyStyles gives the shadow root its styles without a style attribute or an inline <style>
// that a strict CSP would block: a constructed stylesheet, shared by every instance. Browsers
// without constructable stylesheets get a <style> carrying the page's nonce.
function applyStyles(root, nonce) {
  if ("adoptedStyleSheets" in Document.prototype && "replaceSync" in CSSStyleSheet.prototype) {
    if (!sharedSheet) {
      sharedSheet = new CSSStyleSheet();
      sharedSheet.replaceSync(CSS);
    }
    root.adoptedStyleSheets = [sharedSheet];
    return;
  }
  const style = document.createElement("style");
  if (nonce) style.nonce = nonce;
  style.textContent = CSS;
  root.append(style);
}

// --- small helpers -----------------------------------------------------------------------------

function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === undefined || v === null) continue;
    e.setAttribute(k, v === true ? "" : String(v));
  }
  e.append(...children);
  return e;
}

function toB64u(buf) {
  if (!buf) return null;
  let s = "";
  for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromB64u(s) {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
}

function randomB64u(bytes) {
  return toB64u(crypto.getRandomValues(new Uint8Array(bytes)).buffer);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// WidgetError is a failure with the API's error code (or one of the widget's own).
class WidgetError extends Error {
  constructor(code, message, status = 0) {
    super(message || code);
    this.code = code;
    this.status = status;
  }
}

// --- proof of work (ALTCHA format; GET /api/v1/protect/challenge) ------------------------------

const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

// solveOnMainThread finds n with hex(SHA-256(salt + n)) === challenge. Web Crypto hashes off the
// JavaScript thread; batches of promises keep it busy, and each batch yields to the page so
// that typing and painting go on.
async function solveOnMainThread(ch, max) {
  const enc = new TextEncoder();
  const batch = 500;
  for (let from = 0; from <= max; from += batch) {
    const tries = [];
    for (let n = from; n < from + batch && n <= max; n++) {
      tries.push(crypto.subtle.digest("SHA-256", enc.encode(ch.salt + n)).then((d) => (hex(d) === ch.challenge ? n : -1)));
    }
    const found = (await Promise.all(tries)).find((n) => n >= 0);
    if (found !== undefined) return found;
    await sleep(0);
  }
  return -1;
}

// The worker runs the same search; it is a Blob, so it needs worker-src blob: (pow-worker).
const WORKER_SOURCE = `onmessage = async (e) => {
  const { salt, challenge, max } = e.data;
  const enc = new TextEncoder();
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
  for (let from = 0; from <= max; from += 1000) {
    const tries = [];
    for (let n = from; n < from + 1000 && n <= max; n++) {
      tries.push(crypto.subtle.digest("SHA-256", enc.encode(salt + n)).then((d) => (hex(d) === challenge ? n : -1)));
    }
    const found = (await Promise.all(tries)).find((n) => n >= 0);
    if (found !== undefined) { postMessage(found); return; }
  }
  postMessage(-1);
};`;

function solveInWorker(ch, max) {
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  return new Promise((resolve, reject) => {
    let worker;
    try {
      worker = new Worker(url);
    } catch (e) {
      URL.revokeObjectURL(url);
      reject(e);
      return;
    }
    const done = () => { worker.terminate(); URL.revokeObjectURL(url); };
    worker.onmessage = (e) => { done(); resolve(e.data); };
    worker.onerror = (e) => { done(); reject(new WidgetError("bot_check_failed", e.message)); };
    worker.postMessage({ salt: ch.salt, challenge: ch.challenge, max });
  });
}

// --- the element -------------------------------------------------------------------------------

class LatchkeyLogin extends HTMLElement {
  static observedAttributes = ["client-id", "mode", "methods", "lang", "redirect-uri", "issuer"];

  constructor() {
    super();
    this._root = this.attachShadow({ mode: "open", delegatesFocus: true });
    this._state = "";   // the passwordless flow's state handle
    this._poll = null;  // AbortController of a running magic-link poll
    this._rendered = false;
  }

  connectedCallback() {
    if (!this._rendered) {
      // The nonce IDL property survives the browser's nonce hiding; the attribute may not.
      applyStyles(this._root, this.nonce || this.getAttribute("nonce") || "");
      this._rendered = true;
    }
    this._render();
  }

  disconnectedCallback() {
    this._stopPolling();
  }

  attributeChangedCallback() {
    if (this._rendered && this.isConnected) this._render();
  }

  // --- configuration ---

  get _t() { return MESSAGES[pickLanguage(this.getAttribute("lang"))]; }
  get _mode() { return (this.getAttribute("mode") || "inline").trim().toLowerCase(); }
  get _clientID() { return (this.getAttribute("client-id") || "").trim(); }

  get _issuer() {
    const attr = (this.getAttribute("issuer") || "").trim();
    if (!attr) return scriptOrigin;
    try {
      const u = new URL(attr);
      if (u.protocol === "https:" || u.protocol === "http:") return u.origin;
    } catch { /* reported by _configError */ }
    return "";
  }

  get _methods() {
    const attr = this.getAttribute("methods");
    if (attr === null) return METHODS;
    // In the page's order; unknown names are ignored, repeats count once.
    const asked = attr.split(",").map((m) => m.trim().toLowerCase()).filter((m) => METHODS.includes(m));
    return [...new Set(asked)];
  }

  // _configError names what is wrong with the attributes, or returns "".
  _configError() {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(this._clientID)) return "client-id is missing or malformed";
    if (!this._issuer) return "issuer must be an http(s) URL";
    if (this._mode === "redirect") {
      try {
        const u = new URL(this.getAttribute("redirect-uri") || "");
        if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error();
      } catch {
        return "redirect-uri must be an absolute http(s) URL in redirect mode";
      }
      return "";
    }
    if (this._mode !== "inline") return `mode must be "inline" or "redirect", not "${this._mode}"`;
    if (this._methods.length === 0) return "methods names none of " + METHODS.join(", ");
    return "";
  }

  // --- rendering ---

  _render() {
    this._stopPolling();
    const t = this._t;
    const lang = pickLanguage(this.getAttribute("lang"));
    this._status = el("p", { class: "status", part: "status", role: "status", "aria-live": "polite" });
    this._error = el("p", { class: "error", part: "error", id: "error", role: "alert", hidden: true });
    const card = el("div", { class: "card", part: "container", lang });
    card.append(el("h2", { part: "title" }, [t.title]));
    this._root.replaceChildren(...[...this._root.childNodes].filter((n) => n.nodeName === "STYLE"), card);

    const problem = this._configError();
    if (problem) {
      card.append(this._status, this._error);
      this._fail(new WidgetError("misconfigured", problem), false);
      return;
    }
    if (this._mode === "redirect") {
      const go = el("button", { type: "button", part: "button primary", id: "continue" }, [t.continue]);
      go.addEventListener("click", () => this._redirect(go));
      card.append(go, this._status, this._error);
      return;
    }

    const methods = this._methods;
    const byEmail = methods.filter((m) => m !== "passkey");
    let first = true;
    for (const m of methods) {
      if (m === "passkey") {
        if (!first) card.append(el("div", { class: "divider", part: "divider" }, [t.or]));
        const pk = el("button", { type: "button", part: "button secondary", class: "secondary", id: "passkey" }, [t.passkey]);
        pk.addEventListener("click", () => this._passkey(pk));
        card.append(pk);
        first = false;
      } else if (m === byEmail[0]) {
        if (!first) card.append(el("div", { class: "divider", part: "divider" }, [t.or]));
        card.append(...this._emailForms(byEmail));
        first = false;
      }
    }
    card.append(this._status, this._error);
  }

  // _emailForms builds the email form (one submit button per email method) and the code form.
  _emailForms(byEmail) {
    const t = this._t;
    const email = el("input", { id: "email", part: "input", name: "email", type: "email", autocomplete: "email",
      required: true, "aria-describedby": "error" });
    // A honeypot, hidden from people and from assistive technology: scripts that fill every
    // field give themselves away (X-Latchkey-Honeypot).
    this._trap = el("input", { id: "website", name: "website", type: "text", tabindex: "-1", autocomplete: "off" });
    const trap = el("div", { class: "trap", "aria-hidden": "true" }, [el("label", { for: "website" }, ["Website"]), this._trap]);
    const buttons = byEmail.map((m) => el("button", { type: "submit", part: "button primary", id: m === "email-otp" ? "send-code" : "send-link",
      "data-method": m }, [m === "email-otp" ? t.sendCode : t.sendLink]));
    const emailForm = el("form", { id: "email-form", part: "form", novalidate: true },
      [el("label", { for: "email", part: "label" }, [t.email]), email, trap, ...buttons]);

    const code = el("input", { id: "code", part: "input", name: "code", inputmode: "numeric", autocomplete: "one-time-code",
      required: true, maxlength: "8", "aria-describedby": "error" });
    const back = el("button", { type: "button", part: "button secondary", class: "secondary", id: "other-email" }, [t.otherEmail]);
    const codeForm = el("form", { id: "code-form", part: "form", hidden: true, novalidate: true },
      [el("label", { for: "code", part: "label" }, [t.code]), code,
        el("button", { type: "submit", part: "button primary", id: "verify-code" }, [t.verify]), back]);

    const cancel = el("button", { type: "button", part: "button secondary", class: "secondary", id: "cancel-link" }, [t.cancel]);
    const waiting = el("div", { id: "link-sent", hidden: true }, [cancel]);

    emailForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const method = (ev.submitter && ev.submitter.dataset.method) || byEmail[0];
      this._send(method, emailForm, email, codeForm, waiting);
    });
    codeForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this._verify(codeForm, code);
    });
    back.addEventListener("click", () => this._restart(emailForm, [codeForm, waiting], email));
    cancel.addEventListener("click", () => this._restart(emailForm, [codeForm, waiting], email));
    return [emailForm, codeForm, waiting];
  }

  _restart(emailForm, others, focus) {
    this._stopPolling();
    this._state = "";
    for (const o of others) o.hidden = true;
    emailForm.hidden = false;
    this._say("");
    this._clearError();
    focus.focus();
  }

  // --- status and errors ---

  _say(text) { this._status.textContent = text; }

  _clearError() {
    this._error.hidden = true;
    this._error.textContent = "";
    for (const i of this._root.querySelectorAll("input[aria-invalid]")) i.removeAttribute("aria-invalid");
  }

  // _fail shows err and fires latchkey:error with its code and the text shown.
  _fail(err, withEvent = true, input = null) {
    const t = this._t;
    const code = err instanceof WidgetError ? err.code : "unknown";
    let message = t.errors[code];
    if (!message) {
      // The server's own description is English; other languages get the generic sentence.
      message = (pickLanguage(this.getAttribute("lang")) === "en" && err.message && err.message !== code) ? err.message : t.errors.unknown;
    }
    this._say("");
    this._error.textContent = code === "misconfigured" ? `${message} (${err.message})` : message;
    this._error.hidden = false;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    this._emit("latchkey:error", { code, message: code === "misconfigured" ? err.message : message });
  }

  _emit(type, detail, cancelable = false) {
    return this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true, cancelable }));
  }

  // _busy disables the controls of a step while its request runs. Some browsers drop the
  // focus of a control that is disabled (Chromium keeps it), so it is given back afterwards to
  // whatever had it, for people who use the keyboard.
  async _busy(container, fn) {
    const controls = [...container.querySelectorAll("button, input:not([tabindex='-1'])")];
    const was = controls.map((c) => c.disabled);
    const focused = this._root.activeElement;
    controls.forEach((c) => { c.disabled = true; });
    container.setAttribute("aria-busy", "true");
    try {
      return await fn();
    } finally {
      controls.forEach((c, i) => { c.disabled = was[i]; });
      container.removeAttribute("aria-busy");
      if (focused && focused.isConnected && !focused.disabled && !this._root.activeElement) focused.focus();
    }
  }

  // --- the API ---

  // _call makes one request to the Latchkey API. client_id goes in the query as well as the
  // x-client-id header: a CORS preflight carries no custom header, and the server finds the
  // project (and so its allowed origins) from the query. No cookies are sent or wanted.
  async _call(method, path, { body, query = {}, proof = "" } = {}) {
    const url = new URL(path, this._issuer);
    url.searchParams.set("client_id", this._clientID);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const headers = { "Accept": "application/json", "X-Client-Id": this._clientID };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (proof) headers["X-Altcha"] = proof;
    if (this._trap && this._trap.value) headers["X-Latchkey-Honeypot"] = this._trap.value;
    let res;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit", cache: "no-store", mode: "cors", referrerPolicy: "no-referrer" });
    } catch (e) {
      throw new WidgetError("network_error", e.message);
    }
    const data = await res.json().catch(() => ({}));
    // Asked to prove it is no bot: solve the server's proof of work and try once more, so that
    // the person never sees the check.
    if (res.status === 403 && data.error_code === "bot_check_required" && !proof) {
      this._say(this._t.checking);
      return this._call(method, path, { body, query, proof: await this._solve() });
    }
    if (!res.ok) {
      const code = data.error_code || (res.status === 429 ? "too_many_requests" : "unknown");
      throw new WidgetError(code, data.error_description || `HTTP ${res.status}`, res.status);
    }
    return data;
  }

  async _solve() {
    const ch = await this._call("GET", "/api/v1/protect/challenge");
    const max = ch.maxnumber || ch.maxNumber || 1000000;
    const started = Date.now();
    let number = -1;
    let solved = false;
    if (this.hasAttribute("pow-worker") && typeof Worker === "function") {
      try {
        number = await solveInWorker(ch, max);
        solved = true;
      } catch {
        // The page's CSP refused the worker after all (or the browser has none): the main
        // thread still gets there.
      }
    }
    if (!solved) number = await solveOnMainThread(ch, max);
    if (number < 0) throw new WidgetError("bot_check_failed", "could not solve the server's challenge");
    return btoa(JSON.stringify({ algorithm: ch.algorithm, challenge: ch.challenge, number, salt: ch.salt,
      signature: ch.signature, took: Date.now() - started }));
  }

  // _finish handles a login answer: tokens fire latchkey:login, a second-factor demand fires
  // latchkey:mfa-required.
  // Either way this first factor is spent, so the forms go: the app takes over from the event.
  _finish(res) {
    const done = () => { for (const f of this._root.querySelectorAll("form, #passkey, .divider, #link-sent")) f.hidden = true; };
    if (res && res.authenticated) {
      done();
      this._say(this._t.signedIn);
      this._emit("latchkey:login", res);
      return;
    }
    if (res && res.mfa_required) {
      done();
      this._say(this._t.mfa);
      this._emit("latchkey:mfa-required", res);
      return;
    }
    throw new WidgetError("unknown", "the server answered neither tokens nor a second-factor challenge");
  }

  // --- email code and magic link ---

  async _send(method, emailForm, input, codeForm, waiting) {
    this._clearError();
    const email = input.value.trim();
    if (!input.checkValidity() || !email) {
      this._fail(new WidgetError("invalid_email"), true, input);
      return;
    }
    const channel = method === "email-otp" ? "email-otp" : "magic-link";
    try {
      this._say(this._t.working);
      const res = await this._busy(emailForm, () => this._call("POST", API + channel + "/send", { body: { email } }));
      this._state = res.state;
      emailForm.hidden = true;
      if (channel === "email-otp") {
        codeForm.hidden = false;
        this._say(this._t.codeSent.replace("{email}", email));
        codeForm.querySelector("#code").focus();
      } else {
        waiting.hidden = false;
        this._say(this._t.linkSent.replace("{email}", email));
        waiting.querySelector("button").focus();
        this._pollLink(res.state);
      }
    } catch (e) {
      this._fail(e, true, e.code === "invalid_email" ? input : null);
    }
  }

  async _verify(codeForm, input) {
    this._clearError();
    const otp = input.value.replace(/\s+/g, "");
    if (!/^[0-9]{4,8}$/.test(otp)) {
      this._fail(new WidgetError("invalid_code"), true, input);
      return;
    }
    try {
      this._say(this._t.working);
      const res = await this._busy(codeForm, () => this._call("POST", API + "email-otp/verify", { body: { state: this._state, otp } }));
      this._finish(res);
    } catch (e) {
      input.value = "";
      this._fail(e, true, input);
    }
  }

  // _pollLink asks the status route until the emailed link is opened (anywhere), the link
  // expires, or the person cancels; the login result is handed out once.
  async _pollLink(state) {
    this._stopPolling();
    const ctl = new AbortController();
    this._poll = ctl;
    const until = Date.now() + POLL_FOR_MS;
    while (!ctl.signal.aborted) {
      await sleep(POLL_MS);
      if (ctl.signal.aborted) return;
      if (Date.now() > until) {
        this._fail(new WidgetError("link_expired"));
        return;
      }
      try {
        const res = await this._call("GET", API + "magic-link/status", { query: { state } });
        if (ctl.signal.aborted) return;
        if (res.authenticated || res.mfa_required) {
          this._poll = null;
          this._finish(res);
          return;
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
        if (e.code === "network_error") continue; // a blip: ask again at the next tick
        this._poll = null;
        this._fail(e);
        return;
      }
    }
  }

  _stopPolling() {
    if (this._poll) this._poll.abort();
    this._poll = null;
  }

  // --- passkey ---

  async _passkey(button) {
    this._clearError();
    if (!window.PublicKeyCredential || !navigator.credentials) {
      this._fail(new WidgetError("passkey_unsupported"));
      return;
    }
    try {
      const res = await this._busy(this._root.querySelector(".card"), async () => {
        // No identifier: the browser offers the discoverable credentials it holds for the RP.
        const opts = await this._call("GET", API + "passkey/login");
        let cred;
        try {
          cred = await navigator.credentials.get({ publicKey: requestOptions(opts.publicKey) });
        } catch (e) {
          if (e && (e.name === "NotAllowedError" || e.name === "AbortError")) throw new WidgetError("passkey_cancelled", e.message);
          throw new WidgetError("passkey_verification_failed", e && e.message);
        }
        if (!cred) throw new WidgetError("passkey_cancelled");
        this._say(this._t.working);
        return this._call("POST", API + "passkey/login", { body: { auth_code: opts.auth_code, publicKey: assertionJSON(cred) } });
      });
      this._finish(res);
    } catch (e) {
      this._fail(e);
      button.focus();
    }
  }

  // --- redirect mode ---

  // _redirect starts the authorization code flow with PKCE (RFC 7636, S256). The verifier,
  // state and nonce stay in this origin's sessionStorage for the app's callback.
  async _redirect(button) {
    this._clearError();
    if (!window.crypto || !crypto.subtle) {
      this._fail(new WidgetError("misconfigured", "redirect mode needs a secure context (https or localhost) for PKCE"));
      return;
    }
    try {
      await this._busy(button.parentElement, async () => {
        const verifier = randomB64u(32); // 43 characters, the RFC's minimum length and 256 bits
        const challenge = toB64u(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
        const state = randomB64u(16);
        const nonce = randomB64u(16);
        const redirectURI = this.getAttribute("redirect-uri").trim();
        const url = new URL("/v1/authorize", this._issuer);
        const q = url.searchParams;
        q.set("response_type", "code");
        q.set("client_id", this._clientID);
        q.set("redirect_uri", redirectURI);
        q.set("scope", SCOPE);
        q.set("state", state);
        q.set("nonce", nonce);
        q.set("code_challenge", challenge);
        q.set("code_challenge_method", "S256");
        const org = (this.getAttribute("organization") || "").trim();
        if (org) q.set("organization", org);
        const lang = (this.getAttribute("lang") || "").trim();
        if (lang) q.set("ui_locales", lang);
        const hint = (this.getAttribute("login-hint") || "").trim();
        if (hint) q.set("login_hint", hint);
        sessionStorage.setItem(STORAGE_KEY, JSON.stringify({
          client_id: this._clientID, redirect_uri: redirectURI, issuer: this._issuer,
          state, nonce, code_verifier: verifier, created_at: new Date().toISOString(),
        }));
        if (!this._emit("latchkey:redirect", { url: url.href }, true)) return;
        this._say(this._t.redirecting);
        location.assign(url.href);
      });
    } catch (e) {
      this._fail(e instanceof WidgetError ? e : new WidgetError("unknown", e && e.message));
    }
  }
}

// --- WebAuthn JSON <-> browser objects ---------------------------------------------------------

function requestOptions(o) {
  return {
    ...o,
    challenge: fromB64u(o.challenge),
    allowCredentials: (o.allowCredentials || []).map((c) => ({ ...c, id: fromB64u(c.id) })),
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

// takeAuthorization is for the app's callback page in redirect mode: it returns the saved
// request ({client_id, redirect_uri, issuer, state, nonce, code_verifier, created_at}) when
// state (the callback's ?state=) is its state, else null, and removes it either way, so that a
// replayed or forged callback finds nothing to finish. The app then posts code, code_verifier
// and redirect_uri to the token endpoint and checks the ID token's nonce.
function takeAuthorization(state) {
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
  } catch { /* unreadable: treated as absent */ }
  sessionStorage.removeItem(STORAGE_KEY);
  if (!saved || typeof saved.state !== "string" || !state || saved.state !== state) return null;
  return saved;
}

if (!customElements.get("latchkey-login")) customElements.define("latchkey-login", LatchkeyLogin);

export { LatchkeyLogin, STORAGE_KEY, takeAuthorization };
