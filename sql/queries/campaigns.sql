-- Named queries for campaigns, their counters and metrics, and the ledger reads and
-- writes of the campaign lifecycle (the dispatcher's own statements on the send
-- ledger are in dispatch.sql). Every statement filters on merchant_id.
--
-- Lock order: a transaction that changes ledger rows and counters locks the ledger
-- rows first and the campaign row last. Cancel and end-of-campaign lock the campaign
-- first and take only unlocked QUEUED rows (SKIP LOCKED); leftovers are swept later.

-- name: insert_campaign
INSERT INTO campaigns (merchant_id, account_id, name, description, type, template_id,
                       variables, start_at, end_at, time_zone, send_window,
                       respect_contact_time_zone, steps, stop_on_reply, attribution_window,
                       exclusion, max_sends_per_hour, enrol_delay)
VALUES (%(merchant_id)s, %(account_id)s, %(name)s, %(description)s, %(type)s,
        %(template_id)s, %(variables)s, %(start_at)s, %(end_at)s, %(time_zone)s,
        %(send_window)s, %(respect_contact_time_zone)s, %(steps)s, %(stop_on_reply)s,
        %(attribution_window)s, %(exclusion)s, %(max_sends_per_hour)s, %(enrol_delay)s)
RETURNING id;

-- name: get_campaign
SELECT c.*,
       ARRAY(SELECT s.segment_id FROM campaign_segments s
              WHERE s.merchant_id = c.merchant_id AND s.campaign_id = c.id AND NOT s.excluded
              ORDER BY s.segment_id) AS segment_ids,
       ARRAY(SELECT s.segment_id FROM campaign_segments s
              WHERE s.merchant_id = c.merchant_id AND s.campaign_id = c.id AND s.excluded
              ORDER BY s.segment_id) AS exclude_segment_ids
  FROM campaigns c
 WHERE c.merchant_id = %(merchant_id)s AND c.id = %(id)s;

-- name: lock_campaign
SELECT id, status, version FROM campaigns
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s FOR UPDATE;

-- name: update_campaign
UPDATE campaigns
   SET name = %(name)s, description = %(description)s, template_id = %(template_id)s,
       variables = %(variables)s, start_at = %(start_at)s, end_at = %(end_at)s,
       time_zone = %(time_zone)s, send_window = %(send_window)s,
       respect_contact_time_zone = %(respect_contact_time_zone)s, steps = %(steps)s,
       stop_on_reply = %(stop_on_reply)s, attribution_window = %(attribution_window)s,
       exclusion = %(exclusion)s, max_sends_per_hour = %(max_sends_per_hour)s,
       enrol_delay = %(enrol_delay)s, updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: delete_campaign_segments
DELETE FROM campaign_segments WHERE merchant_id = %(merchant_id)s AND campaign_id = %(id)s;

-- name: insert_campaign_segments
INSERT INTO campaign_segments (merchant_id, campaign_id, segment_id, excluded)
SELECT %(merchant_id)s, %(id)s, s, false FROM unnest(%(segment_ids)s::uuid[]) s
UNION ALL
SELECT %(merchant_id)s, %(id)s, s, true FROM unnest(%(exclude_segment_ids)s::uuid[]) s;

-- name: delete_campaign
DELETE FROM campaigns WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: set_status
UPDATE campaigns
   SET status = %(status)s, status_reason = %(status_reason)s,
       started_at = CASE WHEN %(status)s = 'RUNNING' THEN coalesce(started_at, now())
                         ELSE started_at END,
       completed_at = CASE WHEN %(status)s IN ('COMPLETED', 'CANCELLED') THEN now()
                           ELSE completed_at END,
       wait_until = NULL, updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: list_campaigns
-- Newest first, keyset on (created_at, id). Optional filters are NULL when unused.
SELECT c.*,
       ARRAY(SELECT s.segment_id FROM campaign_segments s
              WHERE s.merchant_id = c.merchant_id AND s.campaign_id = c.id AND NOT s.excluded
              ORDER BY s.segment_id) AS segment_ids,
       ARRAY(SELECT s.segment_id FROM campaign_segments s
              WHERE s.merchant_id = c.merchant_id AND s.campaign_id = c.id AND s.excluded
              ORDER BY s.segment_id) AS exclude_segment_ids
  FROM campaigns c
 WHERE c.merchant_id = %(merchant_id)s
   AND (%(account_id)s::uuid IS NULL OR c.account_id = %(account_id)s)
   AND (%(status)s::text IS NULL OR c.status = %(status)s)
   AND (%(type)s::text IS NULL OR c.type = %(type)s)
   AND (%(name_pattern)s::text IS NULL OR c.name ILIKE %(name_pattern)s)
   AND (%(after_created)s::timestamptz IS NULL
        OR (c.created_at, c.id) < (%(after_created)s, %(after_id)s::uuid))
 ORDER BY c.created_at DESC, c.id DESC
 LIMIT %(limit)s;

-- name: existing_templates
SELECT id FROM templates WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: get_templates
SELECT * FROM templates WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: existing_segments
SELECT id FROM segments WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: get_segments
SELECT id, account_id, conditions FROM segments
 WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[])
 ORDER BY id;

-- name: existing_campaigns
SELECT id FROM campaigns WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: get_contacts
SELECT * FROM contacts WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: get_contact
SELECT * FROM contacts WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- ---------------------------------------------------------------- counters

-- name: bump_counters
-- Counter deltas and the current hour's bucket, in the caller's transaction.
WITH c AS (
  UPDATE campaigns
     SET recipients_total = recipients_total + %(total)s,
         sent_count = sent_count + %(sent)s,
         delivered_count = delivered_count + %(delivered)s,
         read_count = read_count + %(read)s,
         replied_count = replied_count + %(replied)s,
         failed_count = failed_count + %(failed)s,
         skipped_count = skipped_count + %(skipped)s
   WHERE merchant_id = %(merchant_id)s AND id = %(campaign_id)s
  RETURNING id
)
INSERT INTO campaign_metrics_hourly AS h
       (merchant_id, campaign_id, hour, sent, delivered, read, replied, failed, skipped)
SELECT %(merchant_id)s, c.id, date_trunc('hour', now()), %(sent)s, %(delivered)s, %(read)s,
       %(replied)s, %(failed)s, %(skipped)s
  FROM c
 WHERE %(sent)s + %(delivered)s + %(read)s + %(replied)s + %(failed)s + %(skipped)s > 0
ON CONFLICT (merchant_id, campaign_id, hour) DO UPDATE
   SET sent = h.sent + EXCLUDED.sent, delivered = h.delivered + EXCLUDED.delivered,
       read = h.read + EXCLUDED.read, replied = h.replied + EXCLUDED.replied,
       failed = h.failed + EXCLUDED.failed, skipped = h.skipped + EXCLUDED.skipped;

-- name: hourly_metrics
SELECT hour, sent, delivered, read, clicked, replied, failed, skipped
  FROM campaign_metrics_hourly
 WHERE merchant_id = %(merchant_id)s AND campaign_id = %(campaign_id)s
   AND hour >= %(start)s - interval '1 hour' AND hour < %(end)s
 ORDER BY hour;

-- ---------------------------------------------------------------- ledger

-- name: skip_queued
-- Cancel / end: unlocked QUEUED rows become SKIPPED (rows a dispatcher holds are
-- swept by sweep_leftovers once it lets go).
UPDATE campaign_recipients r
   SET state = 'SKIPPED', reason = %(reason)s, settled_at = now(), updated_at = now()
 WHERE r.id IN (SELECT id FROM campaign_recipients
                 WHERE merchant_id = %(merchant_id)s AND campaign_id = %(campaign_id)s
                   AND state = 'QUEUED'
                 FOR UPDATE SKIP LOCKED);

-- name: list_recipients
SELECT r.*, c.x_user_id AS c_x_user_id, c.username AS c_username,
       c.display_name AS c_display_name, c.profile_image_url AS c_profile_image_url
  FROM campaign_recipients r
  JOIN contacts c ON c.merchant_id = r.merchant_id AND c.id = r.contact_id
 WHERE r.merchant_id = %(merchant_id)s AND r.campaign_id = %(campaign_id)s
   AND (%(state)s::text IS NULL OR r.state = %(state)s)
   AND (%(contact_id)s::uuid IS NULL OR r.contact_id = %(contact_id)s)
   AND (%(after_due)s::timestamptz IS NULL
        OR (r.due_at, r.contact_id, r.step)
           > (%(after_due)s, %(after_contact)s::uuid, %(after_step)s::int))
 ORDER BY r.due_at, r.contact_id, r.step
 LIMIT %(limit)s;
