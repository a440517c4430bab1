// The SPA fixture's app (see index.html for what the serving test provides). It uses
// oidc-client-ts as its documentation does, with nothing Latchkey-specific:
//   "Sign in"  → UserManager.signinRedirect() (code flow, PKCE S256, state, nonce);
//   the callback (this page with ?code= or ?error=) → signinRedirectCallback(), which
//     exchanges the code at the token endpoint (CORS) and loads userinfo;
//   "Sign out" → signoutRedirect() with the id_token as id_token_hint, back to this page.
// It shows the id_token's claims and whether an access token is held in #result, never a
// token itself; the DOM is written with textContent only (Trusted Types has nothing to allow).

const $ = (id) => document.getElementById(id);
const violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber });
  $("violations").textContent = JSON.stringify(violations);
});

function show(status, result) {
  $("result").textContent = JSON.stringify(result, null, 2);
  $("status").textContent = status;
}

/**
 * The id_token's payload, for display. oidc-client-ts checked the response (state, and the
 * claims it relies on); the tests verify the signature themselves.
 */
function idTokenClaims(idToken) {
  const payload = idToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/**
 * What the tests assert on: the id_token's claims, the profile oidc-client-ts built (id_token
 * merged with userinfo, protocol claims dropped), and whether tokens are held — never a token.
 */
function describe(user) {
  return {
    signed_in: true,
    id_token_claims: user.id_token ? idTokenClaims(user.id_token) : null,
    claims: user.profile,
    access_token_present: typeof user.access_token === "string" && user.access_token.length > 0,
    refresh_token_present: typeof user.refresh_token === "string" && user.refresh_token.length > 0,
    id_token_present: typeof user.id_token === "string" && user.id_token.length > 0,
    token_type: user.token_type,
    scope: user.scope,
    expired: user.expired,
  };
}

async function main() {
  const { oidc } = globalThis;
  if (!oidc?.UserManager) throw new Error("oidc-client-ts did not load (/vendor/oidc-client-ts.js)");
  const response = await fetch("/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`/config.json answered ${response.status}`);
  const config = await response.json();
  for (const key of ["authority", "client_id", "redirect_uri", "scope"]) {
    if (typeof config[key] !== "string" || config[key] === "") throw new Error(`config.json has no ${key}`);
  }

  const manager = new oidc.UserManager({
    authority: config.authority,
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    post_logout_redirect_uri: config.post_logout_redirect_uri,
    response_type: "code",
    scope: config.scope,
    // Optional: the languages the login page should speak (OpenID Connect's ui_locales).
    ui_locales: config.ui_locales || undefined,
    loadUserInfo: true,
    // sessionStorage: the tokens die with the tab; the fixture needs no silent renew, and
    // session monitoring would need an iframe the CSP does not allow.
    userStore: new oidc.WebStorageStateStore({ store: window.sessionStorage }),
    automaticSilentRenew: false,
    monitorSession: false,
  });

  const here = new URL(window.location.href);
  const params = here.searchParams;
  const onRedirectPath = here.origin + here.pathname === new URL(config.redirect_uri).href.split("?")[0];
  if (onRedirectPath && (params.has("code") || params.has("error"))) {
    // The library checks state (and so PKCE's verifier and the nonce it stored) itself.
    const user = await manager.signinRedirectCallback();
    // Drop code and state from the address bar and history, as a real app should.
    window.history.replaceState({}, "", "/");
    show("signed in", describe(user));
  } else if (params.has("state") && !params.has("code")) {
    // Back from RP-initiated logout with the state signoutRedirect sent.
    await manager.signoutRedirectCallback();
    window.history.replaceState({}, "", "/");
    show("signed out", { signed_in: false, signed_out: true });
  } else {
    const user = await manager.getUser();
    if (user && !user.expired) show("signed in", describe(user));
    else show("signed out", { signed_in: false });
  }

  const signedIn = Boolean((await manager.getUser())?.id_token);
  const signin = $("signin");
  const signout = $("signout");
  signin.disabled = false;
  signin.hidden = signedIn;
  signout.hidden = !signedIn;
  signin.addEventListener("click", () => {
    signin.disabled = true;
    $("status").textContent = "redirecting";
    manager.signinRedirect().catch(fail);
  });
  signout.addEventListener("click", () => {
    signout.disabled = true;
    $("status").textContent = "signing out";
    // With state data, oidc-client-ts sends a state (only then) and can match the return.
    manager.signoutRedirect({ state: "signed-out" }).catch(fail);
  });
}

function fail(err) {
  // oidc-client-ts's ErrorResponse carries the OP's error code; its message names no token.
  show("error", { error: err?.error ?? err?.name ?? "Error", message: err?.error_description ?? err?.message ?? String(err) });
}

main().catch(fail);
