-- A signed delivery is never unstorable (issue 13 §4).
--
-- Valid JSON can still hold what jsonb (or PostgreSQL text) cannot: NUL characters,
-- lone UTF-16 surrogates, NaN/Infinity (or numbers that overflow to them). Such a
-- delivery is recorded as received, as bytes in raw_body, with payload NULL, outcome
-- DEAD and last_error saying why, and answered 200, so X does not redeliver a
-- payload that can never be stored. Parsed rows keep payload and leave raw_body NULL.
ALTER TABLE webhook_inbox ADD COLUMN raw_body bytea;
ALTER TABLE webhook_inbox ALTER COLUMN payload DROP NOT NULL;
ALTER TABLE webhook_inbox ADD CONSTRAINT webhook_inbox_payload_or_raw
    CHECK (payload IS NOT NULL OR raw_body IS NOT NULL);
