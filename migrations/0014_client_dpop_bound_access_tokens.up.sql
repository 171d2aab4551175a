-- DPoP (RFC 9449 §5.2, issue 16): a client with dpop_bound_access_tokens
-- must send a DPoP proof at the token endpoint. Off by default: the shipped
-- apps send none, and existing clients keep their bearer tokens.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens boolean NOT NULL DEFAULT false;
