-- Analytics (issue 12 §5): GetConversationAnalytics reads each period index once.
-- The report's series and its period totals now come from one scan per index, one
-- bucket at a time (queries episodes_opened_buckets, first_response_buckets,
-- resolution_buckets, bot_report and per_assignee), so every column those scans
-- aggregate is carried by the index they read: the bot and escalation flags, the
-- assignee, and a new index over the bot's first replies (which had none, so the
-- bot's figures were a heap scan of the merchant's episodes).
DROP INDEX analytics_episodes_opened;
CREATE INDEX analytics_episodes_opened ON analytics_conversation_episodes (merchant_id, opened_at)
    INCLUDE (account_id, status, bot_replied, escalated, assignee_user_id);

DROP INDEX analytics_episodes_resolved;
CREATE INDEX analytics_episodes_resolved ON analytics_conversation_episodes (merchant_id, resolved_at)
    INCLUDE (account_id, resolution_s, resolution_bh_s, bot_only, assignee_user_id)
    WHERE resolved_at IS NOT NULL;

DROP INDEX analytics_episodes_responded;
CREATE INDEX analytics_episodes_responded
    ON analytics_conversation_episodes (merchant_id, first_human_reply_at)
    INCLUDE (account_id, first_response_s, first_response_bh_s, assignee_user_id)
    WHERE first_human_reply_at IS NOT NULL;

CREATE INDEX analytics_episodes_bot_replied
    ON analytics_conversation_episodes (merchant_id, first_bot_reply_at)
    INCLUDE (account_id, bot_response_s, bot_handled_s)
    WHERE first_bot_reply_at IS NOT NULL;
