// A real OpenID provider for the end-to-end tests: oidc-provider (panva) issuing RS256
// client-credentials access tokens as JWTs, mounted under an Entra-shaped issuer
// http://127.0.0.1:PORT/{tid}/v2.0, with Entra-like claims (tid, oid, idtyp, nbf, groups).
//
// Usage: node oidc.mjs PORT TID KID DIR   (OIDC_TOKEN_TTL: access-token lifetime in s, default 600)
// PORT 0 lets the system choose a free port (no race with other processes picking ports); the
// provider prints `ready PORT ISSUER` once it listens. It exits when its standard input closes,
// so it never outlives the test process that started it. Each startup phase is logged with
// its time, to tell a slow machine from a stuck step.
// Writes DIR/key.pem (the signing key, so tests can also forge well-signed bad tokens),
// DIR/public.pem, and DIR/other-key.pem (a key the provider does not publish). Clients (secret = "secret"):
//   member   -> groups [WRITERS]      outsider -> groups [OUTSIDER]
//   graph    -> no groups claim (app-only: membership must come from Microsoft Graph)
import http from "node:http";
import fs from "node:fs";
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const [portArg, tid, kid, dir] = process.argv.slice(2);
// performance.now() counts from the process's start, so the first phase includes node's own
// startup and the module loading.
const phase = (what) => console.error(`oidc +${Math.round(performance.now())}ms ${what}`);
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
phase("modules loaded");
const WRITERS = "11111111-1111-1111-1111-111111111111";
const OUTSIDER = "99999999-9999-9999-9999-999999999999";
const OIDS = {
  member: "aaaaaaaa-0000-0000-0000-000000000001",
  outsider: "aaaaaaaa-0000-0000-0000-000000000002",
  graph: "aaaaaaaa-0000-0000-0000-000000000003",
};
const GROUPS = { member: [WRITERS], outsider: [OUTSIDER] };

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
fs.writeFileSync(`${dir}/key.pem`, privateKey.export({ type: "pkcs8", format: "pem" }));
fs.writeFileSync(`${dir}/public.pem`, createPublicKey(privateKey).export({ type: "spki", format: "pem" }));
const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
fs.writeFileSync(`${dir}/other-key.pem`, other.export({ type: "pkcs8", format: "pem" }));
const jwk = { ...privateKey.export({ format: "jwk" }), kid, use: "sig", alg: "RS256" };
phase("keys generated");

const prefix = `/${tid}/v2.0`;
const client = (id) => ({
  client_id: id,
  client_secret: "secret",
  grant_types: ["client_credentials"],
  redirect_uris: [],
  response_types: [],
});

function makeProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: ["member", "outsider", "graph"].map(client),
    jwks: { keys: [jwk] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => "api://hubgate",
        getResourceServerInfo: () => ({
          scope: "kafka",
          audience: "api://hubgate",
          accessTokenFormat: "jwt",
          accessTokenTTL: Number(process.env.OIDC_TOKEN_TTL || 600),
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
    extraTokenClaims: (ctx, token) => {
      const id = token.clientId;
      const claims = { tid, oid: OIDS[id], idtyp: "app", nbf: Math.floor(Date.now() / 1000) - 5 };
      if (GROUPS[id]) claims.groups = GROUPS[id];
      return claims;
    },
  });
  provider.proxy = false;
  return provider;
}

// The issuer names the port, so the provider is made once the server listens; the test waits
// for the `ready` line, so no request arrives before.
let callback;
const server = http.createServer((req, res) => {
  // Discovery advertises some endpoints (e.g. /jwks) without the issuer's path: serve both.
  if (req.url.startsWith(prefix)) req.url = req.url.slice(prefix.length) || "/";
  callback(req, res);
});
server.listen(Number(portArg), "127.0.0.1", () => {
  const port = server.address().port;
  const issuer = `http://127.0.0.1:${port}${prefix}`;
  callback = makeProvider(issuer).callback();
  phase("listening");
  console.log(`ready ${port} ${issuer}`);
});
