// The OpenID Provider that the tests and the demo run: npm `oidc-provider` (package.json beside this file), set up
// here and nothing more. The protocol (discovery, JWKS, authorization code with PKCE, ID tokens, userinfo) is the
// package's; this file only names its clients, its accounts, its keys and where it listens.
//
// Environment:
//   OIDC_ISSUER          its issuer URL, e.g. http://127.0.0.1:19300 (it listens on that port, on 127.0.0.1)
//   OIDC_CONFIG          a JSON file: {"clients": [{"client_id", "client_secret", "redirect_uris": [...]}],
//                        "accounts": [{"sub", "email", "email_verified", "name"}]} (its accounts are read at each
//                        sign-in, its clients at the start)
//   OIDC_PROVIDER_HOME   the folder whose node_modules holds the package (`npm ci` of package.json beside this file)
//
// Its login page is the package's development one (devInteractions): it asks a login and a password and signs in as
// the account whose `sub` is that login, whatever the password; an unknown login signs in nobody. It is a stand-in
// for a real provider (Keycloak, Google, Azure AD: see the README), never one to put in front of real users.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const need = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
};

const issuer = new URL(need('OIDC_ISSUER'));
const configFile = need('OIDC_CONFIG');
const readConfig = () => JSON.parse(readFileSync(configFile, 'utf8'));
const config = readConfig();
const home = need('OIDC_PROVIDER_HOME');
const { default: Provider } = await import(pathToFileURL(join(home, 'node_modules', 'oidc-provider', 'lib', 'index.js')));

// a fresh signing key each start (its JWKS is what clients read); no development keys from the package
const signing = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer.href.replace(/\/$/, ''), {
  clients: (config.clients ?? []).map((client) => ({
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: client.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: client.client_secret ? 'client_secret_basic' : 'none',
  })),
  jwks: { keys: [{ ...signing, kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' }] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  pkce: { required: () => true }, // every client, confidential or not, must send an S256 code challenge
  scopes: ['openid', 'email', 'profile'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, sub) {
    // the accounts are read anew each time: a test adds its users to the file while the provider runs
    const account = (readConfig().accounts ?? []).find((candidate) => candidate.sub === sub);
    if (!account) return undefined;
    return {
      accountId: account.sub,
      async claims() {
        return { sub: account.sub, email: account.email, email_verified: account.email_verified ?? false, name: account.name };
      },
    };
  },
});

// the package's pages load a web font from the internet: not from here (nothing leaves this machine's loopback)
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path.startsWith('/interaction/')) ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
});

const server = provider.listen(Number(issuer.port || 80), '127.0.0.1', () => {
  console.log(`openid provider ${issuer.href} ready`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
