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

run(async () => {
  const cfg = readConfig();

  const auth =
    cfg.authMethod === "none"
      ? client.None()
      : cfg.authMethod === "client_secret_post"
        ? client.ClientSecretPost(cfg.clientSecret)
        : client.ClientSecretBasic(cfg.clientSecret);
  // enableNonRepudiationChecks makes the library itself verify the id_token's signature with
  // the discovered jwks_uri (by default it trusts TLS for token-endpoint responses).
  const execute = [client.enableNonRepudiationChecks];
  if (cfg.insecure) execute.unshift(client.allowInsecureRequests);

  const config = await client.discovery(
    cfg.issuer,
    cfg.clientID,
    { redirect_uris: [cfg.redirectURI.href], token_endpoint_auth_method: cfg.authMethod },
    auth,
    { execute, timeout: 10 },
  );
  const metadata = config.serverMetadata();
  log(`discovered ${metadata.issuer}`);
  if (!metadata.supportsPKCE("S256")) {
    throw new Error("discovery does not advertise code_challenge_methods_supported S256");
  }

  // PKCE for every client, confidential ones too (OAuth 2.1, and Latchkey accepts it).
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
  log(`code exchanged; id_token verified (kid from ${metadata.jwks_uri})`);

  // fetchUserInfo refuses a userinfo whose sub is not the id_token's (OIDC Core §5.3.4).
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

  if (!tokens.refresh_token) {
    throw new Error("the code exchange returned no refresh_token (was offline_access granted?)");
  }
  const refreshedTokens = await client.refreshTokenGrant(config, tokens.refresh_token);
  if (!refreshedTokens.refresh_token) {
    throw new Error("the refresh returned no new refresh_token: it did not rotate");
  }
  if (refreshedTokens.refresh_token === tokens.refresh_token) {
    throw new Error("the refresh returned the same refresh_token: it did not rotate");
  }
  let idToken = tokens.id_token;
  if (refreshedTokens.id_token) {
    // OIDC Core §12.2: same iss, sub, aud as the original; no nonce to compare.
    const again = await verifyIDToken(refreshedTokens.id_token, { metadata, clientID: cfg.clientID });
    if (again.sub !== claims.sub) throw new Error("the refreshed id_token has another sub");
    idToken = refreshedTokens.id_token;
  }
  // The new access token works where the old one did.
  await client.fetchUserInfo(config, refreshedTokens.access_token, claims.sub);
  log("refresh token rotated");

  let revoked = false;
  if (metadata.revocation_endpoint) {
    await client.tokenRevocation(config, refreshedTokens.refresh_token, { token_type_hint: "refresh_token" });
    // RFC 7009 answers 200 even for an unknown token, so prove the revocation took effect.
    let stillWorks = false;
    try {
      await client.refreshTokenGrant(config, refreshedTokens.refresh_token);
      stillWorks = true;
    } catch (err) {
      if (err?.error !== "invalid_grant") {
        throw new Error(`refreshing with the revoked token failed, but not with invalid_grant: ${err?.error ?? err?.message}`);
      }
    }
    if (stillWorks) throw new Error("the revoked refresh token still refreshes");
    revoked = true;
    log("refresh token revoked");
  } else {
    log("discovery has no revocation_endpoint; not revoking");
  }

  let logoutURL = null;
  if (metadata.end_session_endpoint) {
    const params = { id_token_hint: idToken, state: client.randomState() };
    if (cfg.postLogoutRedirectURI) params.post_logout_redirect_uri = cfg.postLogoutRedirectURI.href;
    logoutURL = client.buildEndSessionUrl(config, params).href;
  } else {
    log("discovery has no end_session_endpoint; no logout URL");
  }

  return {
    library: "openid-client",
    sub: claims.sub,
    email: claims.email ?? userinfo.email ?? null,
    claims,
    userinfo,
    refreshed: true,
    revoked,
    logout_url: logoutURL,
  };
});
