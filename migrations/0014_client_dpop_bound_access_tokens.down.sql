ALTER TABLE clients DROP COLUMN IF EXISTS dpop_bound_access_tokens;
