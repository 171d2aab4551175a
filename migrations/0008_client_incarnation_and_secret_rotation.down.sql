ALTER TABLE clients DROP CONSTRAINT IF EXISTS clients_previous_secret_check;
ALTER TABLE clients DROP COLUMN IF EXISTS previous_secret_expires_at;
ALTER TABLE clients DROP COLUMN IF EXISTS previous_secret_hash;
ALTER TABLE clients DROP COLUMN IF EXISTS incarnation;
