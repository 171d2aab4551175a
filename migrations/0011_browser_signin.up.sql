-- Browser sign-in (SPEC §14): a client's redirect URIs and whether it must
-- send a PKCE S256 challenge (on by default; off only for an app that
-- cannot send one, ADR 0023).
ALTER TABLE clients ADD COLUMN redirect_uris text[] NOT NULL DEFAULT '{}';
ALTER TABLE clients ADD COLUMN pkce_required boolean NOT NULL DEFAULT true;
