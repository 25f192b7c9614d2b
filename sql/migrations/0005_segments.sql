-- Segments: what compiled segment conditions need beyond 0001's tables.

-- ---------------------------------------------------------------- attribute timestamps
-- Timestamp conditions on `attributes.<key>` compare ISO 8601 strings as times. A
-- plain cast would fail the whole query on one contact's malformed value; this
-- returns NULL instead, so such a contact simply does not match. The exception
-- block (a subtransaction) is entered only for strings shaped like a date.
CREATE OR REPLACE FUNCTION mktx_try_timestamptz(value text) RETURNS timestamptz
    LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    IF value IS NULL
       OR value !~ '^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?([Zz]|[+-]\d{2}(:?\d{2})?)?$'
    THEN
        RETURN NULL;
    END IF;
    BEGIN
        RETURN value::timestamptz;
    EXCEPTION WHEN data_exception THEN
        RETURN NULL;
    END;
END
$$;

-- ---------------------------------------------------------------- segments
-- The count refresher (worker loop refresh_segment_counts) claims the stalest
-- segments of every merchant first, like the other background claims.
CREATE INDEX segments_count_due ON segments (count_refreshed_at NULLS FIRST);
