-- Named queries for templates. Every statement filters on merchant_id.

-- name: insert_template
INSERT INTO templates (merchant_id, name, description, type, content, quick_replies,
                       card_media_url, card_buttons, variables, tags)
VALUES (%(merchant_id)s, %(name)s, %(description)s, %(type)s, %(content)s, %(quick_replies)s,
        %(card_media_url)s, %(card_buttons)s, %(variables)s, %(tags)s)
RETURNING *;

-- name: get_template
SELECT * FROM templates WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: get_templates
-- Coalesced GetTemplate reads (store/coalesce.py): one query for a batch of ids.
SELECT * FROM templates WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s);

-- name: get_template_for_update
SELECT * FROM templates WHERE merchant_id = %(merchant_id)s AND id = %(id)s FOR UPDATE;

-- name: update_template
UPDATE templates
   SET name = %(name)s, description = %(description)s, content = %(content)s,
       quick_replies = %(quick_replies)s, card_media_url = %(card_media_url)s,
       card_buttons = %(card_buttons)s, variables = %(variables)s, tags = %(tags)s,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: delete_template
DELETE FROM templates WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: live_campaigns_using_template
-- Campaigns that still send with this template, directly or as a drip/follow-up step.
SELECT id, name, status FROM campaigns
 WHERE merchant_id = %(merchant_id)s
   AND status IN ('SCHEDULED', 'RUNNING', 'PAUSED')
   AND (template_id = %(id)s OR steps @> jsonb_build_array(jsonb_build_object('template_id', %(id)s::text)))
 ORDER BY created_at
 LIMIT 5;

-- name: list_templates
-- Newest first, keyset on (created_at, id). Optional filters are NULL when unused.
SELECT * FROM templates
 WHERE merchant_id = %(merchant_id)s
   AND (%(type)s::text IS NULL OR type = %(type)s)
   AND (%(name_pattern)s::text IS NULL OR name ILIKE %(name_pattern)s)
   AND (%(after_created)s::timestamptz IS NULL
        OR (created_at, id) < (%(after_created)s, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;
