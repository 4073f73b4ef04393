// A real OpenID provider for the facade's tests: panva's oidc-provider on an
// ephemeral loopback port, issuing JWT access tokens (client_credentials with
// resource indicators) for the audience given in SHCR_AUDIENCE.
//
// Prints one JSON line, {"issuer": "..."}, when ready; stops when stdin closes.
//
// Clients (secret "secret"):
//   shcr-backend  system scopes, no user
//   shcr-ehr      user scopes; tokens carry a CIS2-style selected role (R8000)
//   shcr-smart    patient scopes; tokens carry the launch patient 9990000018
//   shcr-outbound the facade itself, asking for a partner's token (client secret)
//   shcr-outbound-jwt  the same with private_key_jwt (ES384), its public key in
//                 SHCR_OUTBOUND_JWKS
// Tokens for the resource https://partner.test/fhir live 4 seconds, so that renewal
// can be watched.
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const audience = process.env.SHCR_AUDIENCE;
if (!audience) {
  console.error('SHCR_AUDIENCE is required');
  process.exit(2);
}

const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });
signingKey.kid = 'test-rs256';
signingKey.use = 'sig';
signingKey.alg = 'RS256';

const clinicalScopes = 'system/*.rs user/*.rs patient/*.rs user/Observation.rs user/Encounter.rs';
const client = (id, scope) => ({
  client_id: id,
  client_secret: 'secret',
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  scope,
});

const partnerResource = 'https://partner.test/fhir';
const outboundJwks = process.env.SHCR_OUTBOUND_JWKS
  ? JSON.parse(process.env.SHCR_OUTBOUND_JWKS)
  : { keys: [] };

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      client('shcr-backend', 'system/*.rs'),
      client('shcr-ehr', 'user/*.rs user/Observation.rs user/Encounter.rs'),
      client('shcr-smart', 'patient/*.rs'),
      client('shcr-outbound', 'system/*.rs'),
      {
        ...client('shcr-outbound-jwt', 'system/*.rs'),
        client_secret: undefined,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES384',
        jwks: outboundJwks,
      },
    ],
    enabledJWA: { clientAuthSigningAlgValues: ['RS384', 'ES384'] },
    jwks: { keys: [signingKey] },
    scopes: clinicalScopes.split(' '),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => ({
          scope: clinicalScopes,
          audience: resource,
          accessTokenTTL: resource === partnerResource ? 4 : 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: (ctx, token) => {
      switch (token.clientId) {
        case 'shcr-ehr':
          return {
            name: 'Dr Test Clinician',
            selected_roleid: '100',
            nhsid_nrbac_roles: [
              { person_roleid: '100', org_code: 'RX1', role_code: 'S8000:G8000:R8000' },
            ],
          };
        case 'shcr-smart':
          return {
            patient: '9990000018',
            selected_roleid: '100',
            nhsid_nrbac_roles: [
              { person_roleid: '100', org_code: 'RX1', role_code: 'S8000:G8000:R8000' },
            ],
          };
        default:
          return undefined;
      }
    },
  });
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer }));
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
