// Tests of lib.mjs's checks, with `node --test` (cmd/latchkey's TestNodeRPChecks runs them):
// the id_token verification must refuse what a relying party must refuse, against a JWKS
// served over real HTTP the way discovery's jwks_uri is, and the configuration must refuse
// what would leak a secret.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import * as jose from "jose";
import { assertIDTokenClaims, describeError, readConfig, verifyIDToken } from "./lib.mjs";

const clientID = "cli_test";
let server;
let metadata;
let signingKey;
let otherKey;

before(async () => {
  const pair = await jose.generateKeyPair("ES256");
  signingKey = pair.privateKey;
  otherKey = (await jose.generateKeyPair("ES256")).privateKey;
  const jwk = { ...(await jose.exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
  server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  metadata = { issuer, jwks_uri: `${issuer}/.well-known/jwks.json`, id_token_signing_alg_values_supported: ["ES256"] };
});

after(() => server.close());

function sign(claims, { key = signingKey, kid = "k1", alg = "ES256" } = {}) {
  return new jose.SignJWT({ sub: "usr_1", nonce: "n-1", ...claims })
    .setProtectedHeader({ alg, kid })
    .setIssuer(claims.iss ?? metadata.issuer)
    .setAudience(claims.aud ?? clientID)
    .setIssuedAt()
    .setExpirationTime(claims.exp ?? "5m")
    .sign(key);
}

describe("verifyIDToken", () => {
  it("accepts a token signed with a key from the JWKS, for this client and nonce", async () => {
    const claims = await verifyIDToken(await sign({}), { metadata, clientID, nonce: "n-1" });
    assert.equal(claims.sub, "usr_1");
  });

  const refused = [
    ["a key that is not in the JWKS", () => sign({}, { key: otherKey }), { nonce: "n-1" }, /discovered JWKS/],
    ["another issuer", () => sign({ iss: "http://127.0.0.1:1" }), { nonce: "n-1" }, /iss .* is not the discovered issuer/],
    ["another audience", () => sign({ aud: "cli_other" }), { nonce: "n-1" }, /aud .* does not contain the client id/],
    ["an expired token", () => sign({ exp: Math.floor(Date.now() / 1000) - 3600 }), { nonce: "n-1" }, /not a valid JWT: ERR_JWT_EXPIRED/],
    ["an unsigned token", async () => new jose.UnsecuredJWT({ sub: "usr_1", nonce: "n-1" }).setIssuer(metadata.issuer).setAudience(clientID).encode(), { nonce: "n-1" }, /id_token refused/],
    ["another nonce", () => sign({}), { nonce: "n-2" }, /nonce/],
    ["several audiences without azp", () => sign({ aud: [clientID, "cli_other"] }), { nonce: "n-1" }, /azp/],
  ];
  for (const [name, token, opts, message] of refused) {
    it(`refuses ${name}`, async () => {
      await assert.rejects(verifyIDToken(await token(), { metadata, clientID, ...opts }), message);
    });
  }

  it("refuses a missing id_token", async () => {
    await assert.rejects(verifyIDToken(undefined, { metadata, clientID }), /no id_token/);
  });
});

describe("assertIDTokenClaims", () => {
  it("compares iss exactly (a trailing slash is another issuer)", () => {
    assert.throws(
      () => assertIDTokenClaims({ iss: metadata.issuer + "/", aud: clientID, sub: "u" }, { issuer: metadata.issuer, clientID }),
      /iss/,
    );
  });
  it("accepts several audiences when azp is the client", () => {
    assertIDTokenClaims({ iss: metadata.issuer, aud: [clientID, "x"], azp: clientID, sub: "u" }, { issuer: metadata.issuer, clientID });
  });
});

describe("readConfig", () => {
  const base = { ISSUER: "http://127.0.0.1:8080", CLIENT_ID: "cli_1", REDIRECT_URI: "http://127.0.0.1:3000/cb" };
  function withEnv(env, fn) {
    const saved = { ...process.env };
    for (const k of ["ISSUER", "CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI", "SCOPE", "POST_LOGOUT_REDIRECT_URI", "TOKEN_ENDPOINT_AUTH_METHOD"]) {
      delete process.env[k];
    }
    Object.assign(process.env, env);
    try {
      return fn();
    } finally {
      process.env = saved;
    }
  }

  it("is a public client without a secret, confidential (basic) with one", () => {
    assert.equal(withEnv(base, readConfig).authMethod, "none");
    assert.equal(withEnv({ ...base, CLIENT_SECRET: "s" }, readConfig).authMethod, "client_secret_basic");
  });
  it("refuses plain http off loopback (a secret would travel in the clear)", () => {
    assert.throws(() => withEnv({ ...base, ISSUER: "http://auth.example.com" }, readConfig), /https/);
  });
  it("refuses a scope without openid, and a secret method without a secret", () => {
    assert.throws(() => withEnv({ ...base, SCOPE: "email" }, readConfig), /openid/);
    assert.throws(() => withEnv({ ...base, TOKEN_ENDPOINT_AUTH_METHOD: "client_secret_post" }, readConfig), /CLIENT_SECRET/);
  });
  it("names every missing variable", () => {
    assert.throws(() => withEnv({}, readConfig), /ISSUER, CLIENT_ID, REDIRECT_URI/);
  });
});

describe("describeError", () => {
  it("keeps the OAuth error and the cause's message, not the response it carries", () => {
    const err = Object.assign(new Error("server responded with an error"), {
      error: "invalid_grant",
      status: 400,
      cause: Object.assign(new Error("unexpected state"), { body: { refresh_token: "rt_secret" } }),
    });
    const text = describeError(err);
    assert.match(text, /invalid_grant/);
    assert.match(text, /unexpected state/);
    assert.doesNotMatch(text, /rt_secret/);
  });
});
