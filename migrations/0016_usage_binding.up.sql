-- DPoP in the migration statistics (issue 16): every aggregate also counts
-- the binding — for an issued access token whether it is DPoP-bound, for a
-- presented token whether it came with the DPoP scheme and its proof:
-- 'dpop' or 'none'. The aggregates counted before hold '' (reported as
-- unbound: no token could be bound before DPoP). The column is
-- part of the key, so the primary key is rebuilt; the table holds hourly
-- aggregates of the retention period only.
ALTER TABLE usage_stats ADD COLUMN binding text NOT NULL DEFAULT '';
ALTER TABLE usage_stats DROP CONSTRAINT usage_stats_pkey;
ALTER TABLE usage_stats ADD PRIMARY KEY
    (hour, client_id, kind, format, grant_type, endpoint, result, error_code, binding);
