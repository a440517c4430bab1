// The steps both relying-party scripts share once they hold tokens, done with openid-client
// (v6): discovery with the client's authentication, userinfo, refresh with rotation, RFC 7009
// revocation proven by use, and the RP-initiated logout URL. Auth.js neither refreshes nor
// revokes, so authjs.mjs runs these on the tokens Auth.js obtained.

import * as client from "openid-client";
import { log, verifyIDToken } from "./lib.mjs";

/**
 * Discovers the issuer as the client cfg describes. The library verifies id_token signatures
 * itself (enableNonRepudiationChecks) rather than trusting TLS, which is what issue 15 asks.
 */
export async function discover(cfg) {
  const auth =
    cfg.authMethod === "none"
      ? client.None()
      : cfg.authMethod === "client_secret_post"
        ? client.ClientSecretPost(cfg.clientSecret)
        : client.ClientSecretBasic(cfg.clientSecret);
  const execute = [client.enableNonRepudiationChecks];
  if (cfg.insecure) execute.unshift(client.allowInsecureRequests);
  const config = await client.discovery(
    cfg.issuer,
    cfg.clientID,
    { redirect_uris: [cfg.redirectURI.href], token_endpoint_auth_method: cfg.authMethod },
    auth,
    { execute, timeout: 10 },
  );
  log(`discovered ${config.serverMetadata().issuer}`);
  return config;
}

/**
 * From a signed-in user's tokens: userinfo (its sub must be the id_token's), a refresh that
 * must rotate the refresh token, revocation of the new refresh token (when discovery offers
 * it) checked by trying to use it, and the logout URL with the newest id_token as the hint.
 */
export async function afterSignIn(config, cfg, { sub, accessToken, refreshToken, idToken }) {
  const metadata = config.serverMetadata();
  // fetchUserInfo refuses a userinfo whose sub is not the id_token's (OIDC Core §5.3.4).
  const userinfo = await client.fetchUserInfo(config, accessToken, sub);

  if (!refreshToken) {
    throw new Error("the code exchange returned no refresh_token (was offline_access granted?)");
  }
  const refreshed = await client.refreshTokenGrant(config, refreshToken);
  if (!refreshed.refresh_token) {
    throw new Error("the refresh returned no new refresh_token: it did not rotate");
  }
  if (refreshed.refresh_token === refreshToken) {
    throw new Error("the refresh returned the same refresh_token: it did not rotate");
  }
  if (refreshed.id_token) {
    // OIDC Core §12.2: same iss, sub and aud as the first one; there is no nonce to compare.
    const again = await verifyIDToken(refreshed.id_token, { metadata, clientID: cfg.clientID });
    if (again.sub !== sub) throw new Error("the refreshed id_token has another sub");
    idToken = refreshed.id_token;
  }
  // The new access token must work where the first one did.
  await client.fetchUserInfo(config, refreshed.access_token, sub);
  log("refresh token rotated");

  let revoked = false;
  if (metadata.revocation_endpoint) {
    await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: "refresh_token" });
    // RFC 7009 answers 200 even for a token it does not know, so prove the revocation held.
    let stillWorks = false;
    try {
      await client.refreshTokenGrant(config, refreshed.refresh_token);
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
  return { userinfo, refreshed: true, revoked, logout_url: logoutURL };
}
