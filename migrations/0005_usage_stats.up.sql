-- Hourly token statistics of the Bearer→JWT migration views (SPEC §12).
-- Every instance buffers its counts in memory and adds them here in
-- batches (count = count + excluded.count), so that instances add up.
-- Issued tokens fill grant_type; presented tokens fill endpoint, result and
-- error_code; the unused columns hold ''. client_id is '' for a presented
-- token that could not be tied to a client, and has no foreign key: the
-- history of a deleted client stays.
CREATE TABLE usage_stats (
    hour       timestamptz NOT NULL CHECK (date_trunc('hour', hour, 'UTC') = hour),
    client_id  text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('issued', 'presented')),
    format     text NOT NULL,
    grant_type text NOT NULL DEFAULT '',
    endpoint   text NOT NULL DEFAULT '',
    result     text NOT NULL DEFAULT '',
    error_code text NOT NULL DEFAULT '',
    count      bigint NOT NULL CHECK (count > 0),
    PRIMARY KEY (hour, client_id, kind, format, grant_type, endpoint, result, error_code)
);
