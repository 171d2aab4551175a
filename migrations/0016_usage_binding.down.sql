-- Aggregates that differ only by binding are summed back into one.
ALTER TABLE usage_stats DROP CONSTRAINT usage_stats_pkey;
WITH gone AS (DELETE FROM usage_stats RETURNING *)
INSERT INTO usage_stats (hour, client_id, kind, format, grant_type, endpoint, result, error_code, binding, count)
SELECT hour, client_id, kind, format, grant_type, endpoint, result, error_code, '', sum(count)
FROM gone GROUP BY hour, client_id, kind, format, grant_type, endpoint, result, error_code;
ALTER TABLE usage_stats DROP COLUMN binding;
ALTER TABLE usage_stats ADD PRIMARY KEY (hour, client_id, kind, format, grant_type, endpoint, result, error_code);
