-- An automation's ai_reply step may add instructions to the assistant's prompt for
-- the message it queues (empty for auto-reply).
ALTER TABLE ai_reply_queue ADD COLUMN instructions text NOT NULL DEFAULT '';
