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
//   shcr-launch   a public SMART app: authorization_code with PKCE (S256 only),
//                 redirect http://127.0.0.1:9/callback. This provider's own SMART
//                 launch extension: `launch/patient` picks the patient at the sign-in
//                 step (GET /interaction/{uid}?patient={NHS number}), `launch=ehr-{NHS
//                 number}` is an EHR launch for that patient; either becomes the
//                 access token's `patient` claim. Sign-in needs no password: the
//                 interaction signs in "dr-launch" (a clinician, R8000) and grants
//                 the scopes asked that the client may have.
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
const launchScopes = 'openid fhirUser launch launch/patient offline_access';
const launchRedirect = 'http://127.0.0.1:9/callback';
// The patient each grant was made for (SMART launch context), by grant id.
const launchPatients = new Map();
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
        client_id: 'shcr-launch',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [launchRedirect],
        scope: `${launchScopes} patient/*.rs user/*.rs`,
      },
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
    scopes: [...clinicalScopes.split(' '), ...launchScopes.split(' ')],
    extraParams: ['launch'],
    pkce: { required: () => true },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
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
        case 'shcr-launch':
          return {
            name: 'Dr Launch Clinician',
            selected_roleid: '200',
            nhsid_nrbac_roles: [
              { person_roleid: '200', org_code: 'RX1', role_code: 'S8000:G8000:R8000' },
            ],
            ...(launchPatients.has(token.grantId) ? { patient: launchPatients.get(token.grantId) } : {}),
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
  // The sign-in and consent steps, without pages: sign in dr-launch, then grant what
  // was asked (with the launch's patient kept for the token).
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const url = new URL(req.url, issuer);
    if (!url.pathname.startsWith('/interaction/')) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        return await provider.interactionFinished(req, res, { login: { accountId: 'dr-launch' } }, { mergeWithLastSubmission: false });
      }
      const { params, session } = details;
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const asked = String(params.scope || '').split(' ').filter(Boolean);
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [resource, scopes] of Object.entries(missing.missingResourceScopes || {})) {
        grant.addResourceScope(resource, scopes.join(' '));
      }
      const launch = String(params.launch || '');
      const patient = launch.startsWith('ehr-') ? launch.slice(4) : asked.includes('launch/patient') ? url.searchParams.get('patient') : null;
      const grantId = await grant.save();
      if (patient) launchPatients.set(grantId, patient);
      return await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } catch (error) {
      res.statusCode = 400;
      res.end(String(error));
    }
  });
  console.log(JSON.stringify({ issuer }));
  // Stdout is read for that line only: anything the provider says later goes to stderr.
  console.log = console.info = console.warn = (...parts) => process.stderr.write(`${parts.join(' ')}\n`);
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
