// A real OpenID provider for the review app's tests and the example district's demo:
// node's oidc-provider on 127.0.0.1, one confidential client (PKCE S256 required), users with
// passwords whose emails are synthetic roster people. Settings: a JSON file (argv[2]) with
// {port, issuer, client: {client_id, client_secret, redirect_uris}, users: [{login, password,
// sub, email, name, groups}], jwks: {keys: [...]}, cookie_key}. Started by harness.py.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import Provider from "oidc-provider";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const users = new Map(cfg.users.map((u) => [u.login, u]));
const bySub = new Map(cfg.users.map((u) => [u.sub, u]));

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const provider = new Provider(cfg.issuer, {
  clients: [{
    ...cfg.client,
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  jwks: cfg.jwks,
  cookies: { keys: [cfg.cookie_key] },
  pkce: { required: () => true },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"], groups: ["groups"] },
  scopes: ["openid", "email", "profile", "groups"],
  conformIdTokenClaims: false, // the claims in the ID token, as Google and Entra ID send them
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const u = bySub.get(sub);
    if (!u) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, email: u.email, email_verified: true, name: u.name, groups: u.groups || [] };
      },
    };
  },
  // first-party client: no consent screen
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid email profile groups");
    await grant.save();
    return grant;
  },
  ttl: { Session: 600, Interaction: 600, Grant: 600, AccessToken: 600, IdToken: 600 },
});

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;
}

provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/);
  if (!m) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (m[2] && ctx.method === "POST") {
    const body = await new Promise((resolve) => {
      let data = "";
      ctx.req.on("data", (c) => { data += c; });
      ctx.req.on("end", () => resolve(new URLSearchParams(data)));
    });
    const u = users.get(body.get("login") || "");
    if (!u || u.password !== body.get("password")) {
      ctx.status = 401;
      ctx.type = "html";
      ctx.body = page("Sign in", `<p id="wrong">Wrong login or password.</p>
<form method="post" action="/interaction/${details.uid}/login">
<input name="login" id="login"><input name="password" id="password" type="password">
<button type="submit" id="submit">Sign in</button></form>`);
      return undefined;
    }
    const to = await provider.interactionResult(ctx.req, ctx.res,
      { login: { accountId: u.sub } }, { mergeWithLastSubmission: false });
    ctx.redirect(to);
    return undefined;
  }
  ctx.type = "html";
  ctx.body = page("Sign in to the test provider", `
<form method="post" action="/interaction/${details.uid}/login">
<label>Login <input name="login" id="login"></label>
<label>Password <input name="password" id="password" type="password"></label>
<button type="submit" id="submit">Sign in</button></form>`);
  return undefined;
});

const server = createServer(provider.callback());
server.listen(cfg.port, "127.0.0.1", () => {
  process.stdout.write(`listening ${cfg.issuer}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
