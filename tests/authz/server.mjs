// An independent OAuth 2.0 authorization server for the tests: panva oidc-provider, configured
// for the client-credentials grant with private_key_jwt client authentication (RS384, ES384).
// Usage: node server.mjs PORT CLIENTS.json [RESOURCE]   (clients: [{client_id, jwks, scope}])
// With RESOURCE (a FHIR base URL, e.g. the test HAPI's http://127.0.0.1:PORT/smart/fhir) every
// token is a signed JWT access token (RFC 9068, "at+jwt") whose aud is RESOURCE, checked by that
// server against this one's keys at ISSUER/jwks; without it tokens are opaque.
// Prints "ready <issuer>" on stdout once it listens on 127.0.0.1.
import { readFileSync } from "node:fs";
import Provider, { errors } from "oidc-provider";

const [port, clientsFile, resource] = process.argv.slice(2);
const clients = JSON.parse(readFileSync(clientsFile, "utf8"));
const issuer = `http://127.0.0.1:${port}`;
const scopes = [...new Set(clients.flatMap((c) => c.scope.split(" ")))];

const provider = new Provider(issuer, {
  clients: clients.map((c) => ({
    client_id: c.client_id,
    token_endpoint_auth_method: "private_key_jwt",
    jwks: c.jwks,
    grant_types: ["client_credentials"],
    response_types: [],
    redirect_uris: [],
    scope: c.scope,
  })),
  clientAuthMethods: ["private_key_jwt"],
  enabledJWA: { clientAuthSigningAlgValues: ["RS384", "ES384"] },
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: resource ? {
      enabled: true,
      defaultResource: async () => resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, indicator) => {
        if (indicator !== resource) throw new errors.InvalidTarget();
        return { scope: scopes.join(" "), audience: resource, accessTokenTTL: 300,
                 accessTokenFormat: "jwt", jwt: { sign: { alg: "RS256" } } };
      },
    } : { enabled: true },
  },
  scopes,
});
provider.listen(Number(port), "127.0.0.1", () => {
  console.log(`ready ${issuer}`);
});
