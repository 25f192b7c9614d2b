-- Campaigns and analytics (issues 4 and 12): a conversation a campaign's DM created
-- is closed from the start ("a campaign never opens support work"). It is support
-- work only once the contact writes and it reopens, so analytics gives it no
-- episode before that (domain.analytics.episodes): a campaign to 10,000 new
-- contacts is not 10,000 conversations resolved in 0 s.
ALTER TABLE conversations ADD COLUMN created_closed boolean NOT NULL DEFAULT false;

-- Conversations campaigns created before this column, still closed as they were
-- created (closed in the creating statement: closed_at is its created_at).
UPDATE conversations SET created_closed = true
 WHERE close_reason = 'campaign' AND status = 'CLOSED' AND closed_at = created_at;

-- A rebuild before this counted each of them as an episode opened and resolved at once;
-- they have none now.
DELETE FROM analytics_conversation_episodes e
 USING conversations c
 WHERE e.merchant_id = c.merchant_id AND e.conversation_id = c.id AND c.created_closed;
