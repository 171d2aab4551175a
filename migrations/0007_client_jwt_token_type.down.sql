ALTER TABLE clients DROP COLUMN IF EXISTS jwt_token_type;
