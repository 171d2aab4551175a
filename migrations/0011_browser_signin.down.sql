ALTER TABLE clients DROP COLUMN IF EXISTS pkce_required;
ALTER TABLE clients DROP COLUMN IF EXISTS redirect_uris;
