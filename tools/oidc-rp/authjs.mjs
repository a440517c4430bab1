// A stock Auth.js relying party: @auth/core's `Auth(request, config)` driven with Web Request
// objects exactly as a framework adapter (Next.js, SvelteKit, Express) would, with the SSOJet
// provider configured with only the issuer, client id and secret — SSOJet's documented drop-in
// path, pointed at Latchkey. The Go test signs the user in on the OP's page (lib.mjs has the
// JSON-lines conversation):
//   GET  {base}/csrf → POST {base}/signin/ssojet → the OP's authorization URL (printed)
//   GET  {base}/callback/ssojet?code=… → the session cookie → GET {base}/session → the user.
// Auth.js verifies state, PKCE and nonce, but trusts TLS for the id_token's signature and does
// not refresh, revoke or log out at the OP, so the script verifies the id_token against the
// discovered JWKS itself and runs userinfo → refresh → revoke → logout URL with openid-client
// (steps.mjs) on the tokens Auth.js obtained (the jwt callback's `account`).
//
// Environment as lib.mjs reads it; REDIRECT_URI must be Auth.js's callback URL,
// <origin><basePath>/callback/ssojet, since Auth.js derives redirect_uri from the request.

import { Auth } from "@auth/core";
import { randomBytes } from "node:crypto";
import { assertIDTokenClaims, describeError, emit, log, readCallback, readConfig, run, verifyIDToken } from "./lib.mjs";
import { afterSignIn, discover } from "./steps.mjs";

const providerID = "ssojet";

/**
 * The SSOJet provider. @auth/core's built-in one is used when the installed version ships it;
 * @auth/core 0.41.3, the newest on npm, does not (nextauthjs/next-auth#13311 adds it and is not
 * released), so the fallback is the same definition that pull request adds: an "oidc"-type
 * provider with id "ssojet" whose options are the user's config, nothing else. Which one ran is
 * reported as `provider` in the result.
 */
async function ssojetProvider() {
  try {
    const mod = await import("@auth/core/providers/ssojet");
    return { factory: mod.default, source: "@auth/core/providers/ssojet" };
  } catch (err) {
    if (err?.code !== "ERR_MODULE_NOT_FOUND" && err?.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw err;
    const factory = (options) => ({
      id: providerID,
      name: "SSOJet",
      type: "oidc",
      style: { text: "#fff", bg: "#1a1a1a" },
      options,
    });
    return { factory, source: "inline copy of next-auth#13311's providers/ssojet (not in this @auth/core)" };
  }
}

/** A minimal cookie jar: Auth.js keeps state, PKCE verifier, nonce, CSRF and session in cookies. */
class Jar {
  #cookies = new Map();
  take(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a)) || value === "";
      if (expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }
  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
  has(prefix) {
    return [...this.#cookies.keys()].some((k) => k.includes(prefix));
  }
}

run(async () => {
  const cfg = readConfig();
  const suffix = `/callback/${providerID}`;
  if (!cfg.redirectURI.pathname.endsWith(suffix)) {
    throw new Error(`REDIRECT_URI must end with ${suffix}: Auth.js builds redirect_uri as <origin><basePath>${suffix}`);
  }
  const origin = cfg.redirectURI.origin;
  const basePath = cfg.redirectURI.pathname.slice(0, -suffix.length) || "/";
  const base = `${origin}${basePath === "/" ? "" : basePath}`;

  const { factory, source } = await ssojetProvider();
  let account = null; // the token response, captured in memory; never put in the session cookie
  let authError = null;
  const config = {
    providers: [
      factory({
        issuer: cfg.issuerString,
        clientId: cfg.clientID,
        clientSecret: cfg.clientSecret,
        // Auth.js's default for oidc providers is ["pkce"]; state and nonce are what a careful
        // deployment adds, and the nonce lets us check the id_token belongs to this request.
        checks: ["pkce", "state", "nonce"],
        authorization: { params: { scope: cfg.scope } },
        client: { token_endpoint_auth_method: cfg.authMethod },
      }),
    ],
    basePath,
    secret: randomBytes(32).toString("base64url"),
    trustHost: true,
    session: { strategy: "jwt" },
    callbacks: {
      jwt({ token, account: acct }) {
        if (acct) {
          account = acct;
          // The OP's subject; Auth.js's own token.sub is a random user id without an adapter.
          token.oidc_sub = acct.providerAccountId;
        }
        return token;
      },
      session({ session, token }) {
        session.user.sub = token.oidc_sub;
        return session;
      },
    },
    logger: {
      // Auth.js's errors carry the cause (provider answers); its messages name no tokens.
      error(err) {
        authError = err;
        log(`Auth.js error: ${err?.name ?? ""} ${describeError(err?.cause?.err ?? err)}`);
      },
      warn(code) {
        log(`Auth.js warning: ${code}`);
      },
      debug() {},
    },
  };

  const jar = new Jar();
  async function call(path, init = {}) {
    const headers = new Headers(init.headers);
    const cookie = jar.header();
    if (cookie) headers.set("cookie", cookie);
    const response = await Auth(new Request(path.startsWith("http") ? path : `${base}${path}`, { ...init, headers }), config);
    jar.take(response);
    return response;
  }
  function failIfError(response, what) {
    const location = response.headers.get("location") ?? "";
    if (response.status >= 400 || new URL(location, base).pathname === `${basePath === "/" ? "" : basePath}/error`) {
      const code = new URL(location || base, base).searchParams.get("error") ?? `HTTP ${response.status}`;
      const cause = authError ? describeError(authError.cause?.err ?? authError) : "";
      throw new Error(`Auth.js ${what} failed: ${code}${cause ? ` (${cause})` : ""}`);
    }
  }

  const csrfResponse = await call("/csrf");
  failIfError(csrfResponse, "csrf");
  const { csrfToken } = await csrfResponse.json();

  const signin = await call(`/signin/${providerID}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrfToken, callbackUrl: `${origin}/` }),
  });
  failIfError(signin, "signin");
  const authorizeURL = signin.headers.get("location");
  if (signin.status !== 302 || !authorizeURL) {
    throw new Error(`Auth.js signin answered ${signin.status} without a redirect to the OP`);
  }
  const nonce = new URL(authorizeURL).searchParams.get("nonce");
  if (!nonce) throw new Error("Auth.js sent no nonce in the authorization request");
  // Discovery through openid-client too: the same document Auth.js read, for the checks below.
  const rp = await discover(cfg);
  const metadata = rp.serverMetadata();
  if (!authorizeURL.startsWith(metadata.authorization_endpoint)) {
    throw new Error("Auth.js redirected somewhere else than the discovered authorization_endpoint");
  }
  const sent = new URL(authorizeURL).searchParams;
  if (sent.get("code_challenge_method") !== "S256" || !sent.get("code_challenge")) {
    throw new Error("Auth.js did not send a PKCE S256 challenge");
  }
  emit({ step: "authorize", url: authorizeURL });

  const callbackURL = await readCallback(cfg.redirectURI);
  const callback = await call(callbackURL.href);
  failIfError(callback, "callback");
  if (callback.status !== 302 || !account) {
    throw new Error(`Auth.js callback answered ${callback.status} without completing the sign-in`);
  }
  if (!jar.has("session-token")) throw new Error("Auth.js set no session cookie");

  const sessionResponse = await call("/session");
  failIfError(sessionResponse, "session");
  const session = await sessionResponse.json();
  if (!session?.user) throw new Error("Auth.js's session endpoint has no user");

  // Auth.js validated the id_token's claims and nonce but not its signature: do both here.
  const claims = await verifyIDToken(account.id_token, { metadata, clientID: cfg.clientID, nonce });
  assertIDTokenClaims(claims, { issuer: metadata.issuer, clientID: cfg.clientID, nonce });
  if (session.user.sub !== claims.sub) {
    throw new Error("Auth.js's session user is not the id_token's sub");
  }
  if (claims.email && session.user.email !== claims.email.toLowerCase()) {
    throw new Error("Auth.js's session email is not the id_token's email");
  }
  log(`Auth.js session for ${claims.sub}; id_token verified against ${metadata.jwks_uri}`);

  const rest = await afterSignIn(rp, cfg, {
    sub: claims.sub,
    accessToken: account.access_token,
    refreshToken: account.refresh_token,
    idToken: account.id_token,
  });
  return {
    library: "@auth/core",
    provider: source,
    sub: claims.sub,
    email: session.user.email ?? null,
    session: { user: session.user, expires: session.expires },
    claims,
    ...rest,
  };
});
