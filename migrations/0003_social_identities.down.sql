DROP TABLE IF EXISTS social_identities;
