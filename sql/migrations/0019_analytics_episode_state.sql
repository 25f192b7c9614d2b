-- Analytics (issue 12 §5): what the analytics-rollups consumer needs to update a
-- live episode from its stored row and a new message, without reading the
-- conversation's earlier messages (domain.analytics.extend_episode). Functions of
-- the episode's messages like every other column, so the rebuild computes them too.
-- Rows written before this migration have NULL last_message_at, which makes the
-- consumer recompute their conversation from its messages once, as before.
ALTER TABLE analytics_conversation_episodes
    ADD COLUMN last_bot_reply_at    timestamptz,
    ADD COLUMN contact_after_bot_at timestamptz,
    ADD COLUMN last_message_at      timestamptz;
