-- The operators' desk (desk/): signed-in browsers and sign-ins under way.
--
-- A session is kept server-side, not in a signed cookie: signing out (or an operator
-- removed from the identity provider, once their row is deleted) ends it at once, the
-- CSRF token lives beside it, and no signing key has to be configured or rotated. The
-- cookie holds 32 random bytes; only their sha256 is stored, so a read of this table
-- (a backup, a replica) opens no browser's session.
CREATE TABLE desk_sessions (
    id_sha256   text PRIMARY KEY,
    actor       text NOT NULL,
    roles       text[] NOT NULL,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX desk_sessions_expiry ON desk_sessions (expires_at);

-- An OIDC sign-in between the redirect to the provider and its callback: the state's
-- sha256 (the browser also holds the state in a cookie, so another browser's callback
-- does not sign this one in), the nonce the ID token must carry, the PKCE verifier, and
-- the desk page to return to. Used once.
CREATE TABLE desk_sign_ins (
    state_sha256   text PRIMARY KEY,
    nonce          text NOT NULL,
    code_verifier  text NOT NULL,
    return_to      text NOT NULL,
    expires_at     timestamptz NOT NULL
);
