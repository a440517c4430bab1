// A stock relying party on npm's openid-client (v6), driven by a Go test over JSON lines (see
// lib.mjs): discovery → authorization code + PKCE (S256) → code exchange with the id_token
// verified against the discovered JWKS → userinfo → refresh (the refresh token must rotate) →
// RFC 7009 revocation (the revoked token must then be refused) → the RP-initiated logout URL.
//
// It uses the library the way its documentation does, with nothing Latchkey-specific, so a
// pass means any application written against openid-client signs in by setting the issuer.
//
// Environment: ISSUER, CLIENT_ID, REDIRECT_URI, optional CLIENT_SECRET (absent: public client),
// SCOPE (default "openid profile email offline_access"), POST_LOGOUT_REDIRECT_URI and
// TOKEN_ENDPOINT_AUTH_METHOD (client_secret_basic by default when there is a secret).

import * as client from "openid-client";
import { assertIDTokenClaims, emit, log, readCallback, readConfig, run, verifyIDToken } from "./lib.mjs";
import { afterSignIn, discover } from "./steps.mjs";

run(async () => {
  const cfg = readConfig();
  const config = await discover(cfg);
  const metadata = config.serverMetadata();
  if (!metadata.supportsPKCE("S256")) {
    throw new Error("discovery does not advertise code_challenge_methods_supported S256");
  }

  // PKCE for every client, confidential ones too (OAuth 2.1; Latchkey accepts it from both).
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizeURL = client.buildAuthorizationUrl(config, {
    redirect_uri: cfg.redirectURI.href,
    scope: cfg.scope,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  emit({ step: "authorize", url: authorizeURL.href });

  const callback = await readCallback(cfg.redirectURI);
  // Checks state, iss (RFC 9207, when sent), PKCE, nonce, the id_token's claims and signature.
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  assertIDTokenClaims(claims, { issuer: metadata.issuer, clientID: cfg.clientID, nonce });
  await verifyIDToken(tokens.id_token, { metadata, clientID: cfg.clientID, nonce });
  log(`code exchanged; id_token verified against ${metadata.jwks_uri}`);

  const rest = await afterSignIn(config, cfg, {
    sub: claims.sub,
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token,
    idToken: tokens.id_token,
  });
  return {
    library: "openid-client",
    sub: claims.sub,
    email: claims.email ?? rest.userinfo.email ?? null,
    claims,
    ...rest,
  };
});
