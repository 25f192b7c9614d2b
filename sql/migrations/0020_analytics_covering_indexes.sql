-- Analytics (issue 12 §5): the report queries' period scans read only their index.
-- Each period index of the episodes now carries the columns the reports aggregate
-- over it (and account_id, for the account filter), so GetOverview and the series
-- of GetConversationAnalytics are index-only scans where the visibility map allows,
-- instead of a heap visit per episode. Same keys and predicates as the indexes of
-- 0017 they replace, so no query changes plan shape for the worse.
DROP INDEX analytics_episodes_opened;
CREATE INDEX analytics_episodes_opened ON analytics_conversation_episodes (merchant_id, opened_at)
    INCLUDE (account_id, status);

DROP INDEX analytics_episodes_resolved;
CREATE INDEX analytics_episodes_resolved ON analytics_conversation_episodes (merchant_id, resolved_at)
    INCLUDE (account_id, resolution_s, resolution_bh_s)
    WHERE resolved_at IS NOT NULL;

DROP INDEX analytics_episodes_responded;
CREATE INDEX analytics_episodes_responded
    ON analytics_conversation_episodes (merchant_id, first_human_reply_at)
    INCLUDE (account_id, first_response_s, first_response_bh_s)
    WHERE first_human_reply_at IS NOT NULL;
