// Shared plumbing of the relying-party scripts (openid-client.mjs, authjs.mjs): configuration
// from the environment, the JSON-lines conversation with the Go test on stdin/stdout, and the
// checks every RP makes on an id_token whatever library obtained it.
//
// The conversation is deliberately tiny so the Go side stays a few lines:
//   script → {"step":"authorize","url":"…"}
//   test   → {"callback_url":"…"}          (after signing the user in on the OP's page)
//   script → {"step":"done",…} and exit 0, or {"step":"error","error":"…"} and exit 1.
// stdout carries nothing else; diagnostics go to stderr. No token, code or secret is ever
// written to either stream: only claims, which the test asserts on.

import * as jose from "jose";
import { createInterface } from "node:readline";

/**
 * Reads the relying party's settings from the environment. CLIENT_SECRET absent means a public
 * client (token_endpoint_auth_method "none"), which then relies on PKCE alone.
 */
export function readConfig() {
  const env = process.env;
  const missing = ["ISSUER", "CLIENT_ID", "REDIRECT_URI"].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new Error(`missing environment variables: ${missing.join(", ")}`);
  }
  const issuer = parseURL("ISSUER", env.ISSUER);
  const redirectURI = parseURL("REDIRECT_URI", env.REDIRECT_URI);
  const postLogoutRedirectURI = env.POST_LOGOUT_REDIRECT_URI
    ? parseURL("POST_LOGOUT_REDIRECT_URI", env.POST_LOGOUT_REDIRECT_URI)
    : undefined;
  // Plain http is accepted only on loopback, where the tests run; anything else must be https
  // or the script would happily send a client secret in the clear.
  for (const [name, u] of [["ISSUER", issuer], ["REDIRECT_URI", redirectURI]]) {
    if (u.protocol !== "https:" && !(u.protocol === "http:" && isLoopback(u.hostname))) {
      throw new Error(`${name} must be https (http only on a loopback host): ${u.href}`);
    }
  }
  const scope = (env.SCOPE || "openid profile email offline_access").trim();
  if (!scope.split(/\s+/).includes("openid")) {
    throw new Error(`SCOPE must include openid: ${scope}`);
  }
  const authMethod = env.TOKEN_ENDPOINT_AUTH_METHOD || (env.CLIENT_SECRET ? "client_secret_basic" : "none");
  if (!["client_secret_basic", "client_secret_post", "none"].includes(authMethod)) {
    throw new Error(`TOKEN_ENDPOINT_AUTH_METHOD must be client_secret_basic, client_secret_post or none: ${authMethod}`);
  }
  if (authMethod !== "none" && !env.CLIENT_SECRET) {
    throw new Error(`TOKEN_ENDPOINT_AUTH_METHOD ${authMethod} needs CLIENT_SECRET`);
  }
  return {
    issuer,
    // As the user wrote it: Auth.js is configured with the string, like an app's env.
    issuerString: env.ISSUER,
    clientID: env.CLIENT_ID,
    clientSecret: env.CLIENT_SECRET || undefined,
    authMethod,
    redirectURI,
    postLogoutRedirectURI,
    scope,
    insecure: issuer.protocol === "http:",
  };
}

function parseURL(name, value) {
  try {
    return new URL(value);
  } catch {
    throw new Error(`${name} is not a URL: ${value}`);
  }
}

function isLoopback(host) {
  return host === "localhost" || host === "127.0.0.1" || host === "[::1]" || host === "::1";
}

/** Writes one line of the conversation to stdout. */
export function emit(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

/** Logs a diagnostic line to stderr (the Go test shows it when the script fails). */
export function log(message) {
  process.stderr.write(`[${new Date().toISOString()}] ${message}\n`);
}

// Opened on first use: an open stdin reader would keep a process that never reads alive.
let lines;

/**
 * Reads the test's one answer: the URL the OP redirected the browser to after sign-in. It must
 * be on REDIRECT_URI (same origin and path) so a confused test cannot feed another app's code.
 */
export async function readCallback(redirectURI) {
  lines ??= createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const { value, done } = await lines.next();
  if (done) throw new Error("stdin closed before the callback_url line");
  let msg;
  try {
    msg = JSON.parse(value);
  } catch {
    throw new Error("the answer on stdin is not JSON");
  }
  if (typeof msg?.callback_url !== "string") {
    throw new Error('the answer on stdin has no "callback_url" string');
  }
  const cb = parseURL("callback_url", msg.callback_url);
  if (cb.origin !== redirectURI.origin || cb.pathname !== redirectURI.pathname) {
    throw new Error(`callback_url is not on REDIRECT_URI (${redirectURI.origin}${redirectURI.pathname})`);
  }
  return cb;
}

/**
 * Verifies an id_token's signature against the JWKS published at the jwks_uri from discovery,
 * independently of the RP library (which may skip it: OIDC Core §3.1.3.7 lets a client trust
 * TLS for tokens from the token endpoint), then checks iss, aud, azp and nonce itself.
 * Returns the verified claims.
 */
export async function verifyIDToken(idToken, { metadata, clientID, nonce }) {
  if (typeof idToken !== "string" || idToken === "") {
    throw new Error("the token response has no id_token");
  }
  if (!metadata.jwks_uri) throw new Error("discovery has no jwks_uri");
  const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
  let payload;
  try {
    // The signature (with a key from the JWKS, an algorithm discovery lists) and exp/nbf;
    // the claims that name this client and request are checked below, each with its reason.
    ({ payload } = await jose.jwtVerify(idToken, jwks, {
      algorithms: metadata.id_token_signing_alg_values_supported,
    }));
  } catch (err) {
    const why =
      err.code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" || err.code === "ERR_JWKS_NO_MATCHING_KEY"
        ? "its signature does not verify against the discovered JWKS"
        : "it is not a valid JWT";
    throw new Error(`id_token refused: ${why}: ${err.code ?? ""} ${err.message}`);
  }
  assertIDTokenClaims(payload, { issuer: metadata.issuer, clientID, nonce });
  return payload;
}

/** The claim checks of OIDC Core §3.1.3.7 that do not need the key, asserted explicitly. */
export function assertIDTokenClaims(claims, { issuer, clientID, nonce }) {
  if (claims.iss !== issuer) {
    throw new Error(`id_token iss ${JSON.stringify(claims.iss)} is not the discovered issuer ${JSON.stringify(issuer)}`);
  }
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(clientID)) {
    throw new Error(`id_token aud ${JSON.stringify(claims.aud)} does not contain the client id`);
  }
  if (aud.length > 1 && claims.azp !== clientID) {
    throw new Error(`id_token has several audiences and azp ${JSON.stringify(claims.azp)} is not the client id`);
  }
  if (nonce !== undefined && claims.nonce !== nonce) {
    throw new Error("id_token nonce is not the one sent in the authorization request");
  }
  if (typeof claims.sub !== "string" || claims.sub === "") {
    throw new Error("id_token has no sub");
  }
}

/**
 * Describes an error without leaking what it carries: openid-client/oauth4webapi errors hold
 * the response (and so tokens) in `cause`; only the OAuth error code, its description and the
 * HTTP status are safe to print.
 */
export function describeError(err) {
  const parts = [err?.message ?? String(err)];
  if (err?.error) parts.push(`error=${err.error}`);
  if (err?.error_description) parts.push(`error_description=${err.error_description}`);
  if (err?.status) parts.push(`status=${err.status}`);
  if (err?.code && !String(err.message).includes(err.code)) parts.push(`code=${err.code}`);
  // The library's own explanation is in the cause's message (e.g. 'unexpected "state"
  // response parameter value'); the cause's other fields hold the response, so only messages.
  for (let cause = err?.cause, depth = 0; cause instanceof Error && depth < 3; cause = cause.cause, depth++) {
    parts.push(`cause: ${cause.message}${cause.code ? ` (${cause.code})` : ""}`);
  }
  return parts.join(" ");
}

/** Runs a script's main function and turns any failure into the error line and exit code 1. */
export async function run(main) {
  try {
    const result = await main();
    emit({ step: "done", ...result });
    process.exit(0);
  } catch (err) {
    const message = describeError(err);
    log(`failed: ${message}`);
    emit({ step: "error", error: message });
    process.exit(1);
  }
}
