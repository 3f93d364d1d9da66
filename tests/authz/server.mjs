// An independent OAuth 2.0 authorization server for the tests: panva oidc-provider, configured
// for the client-credentials grant with private_key_jwt client authentication (RS384, ES384).
// Usage: node server.mjs PORT CLIENTS.json   (clients: [{client_id, jwks, scope}])
// Prints "ready <issuer>" on stdout once it listens on 127.0.0.1.
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const [port, clientsFile] = process.argv.slice(2);
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
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  scopes,
});
provider.listen(Number(port), "127.0.0.1", () => {
  console.log(`ready ${issuer}`);
});
