DROP TABLE IF EXISTS authorization_codes;
