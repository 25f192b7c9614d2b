-- Publishing: posts (one part, or a thread), their per-part publish ledger, and the
-- history of their metrics.
--
-- A post is claimed by one publisher at a time (`lease_until` + `lease_token`, taken
-- with FOR UPDATE SKIP LOCKED); each part is a ledger row armed (PUBLISHING, with
-- `armed_at`) and committed before it is sent to X, and confirmed (PUBLISHED, with
-- X's post id) after. An armed part whose outcome is unknown is looked up in the
-- account's timeline before anything is sent again, so no part is published twice.

-- ---------------------------------------------------------------- posts
CREATE TABLE posts (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id      uuid        NOT NULL,
    account_id       uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status           text        NOT NULL
        CHECK (status IN ('SCHEDULED', 'PUBLISHING', 'PUBLISHED', 'PARTIALLY_PUBLISHED',
                          'FAILED', 'CANCELLED', 'DELETED')),
    status_reason    text        NOT NULL DEFAULT '',
    reply_settings   text        NOT NULL DEFAULT 'EVERYONE'
        CHECK (reply_settings IN ('EVERYONE', 'FOLLOWING', 'MENTIONED_USERS')),
    quote_post_id    text        NOT NULL DEFAULT '',
    reply_to_post_id text        NOT NULL DEFAULT '',
    -- When the post was asked to go out (the creation time when published at once).
    publish_at       timestamptz NOT NULL,
    -- When it is due: publish_at, moved by X's rate-limit resets. The grace for a
    -- late scheduled post is measured from here.
    due_at           timestamptz NOT NULL,
    -- When a publisher may next take it (due_at, or a back-off); NULL: nothing to do.
    ready_at         timestamptz,
    -- The publisher holding it, until when. Every write of a publisher names its token.
    lease_until      timestamptz,
    lease_token      uuid,
    attempts         integer     NOT NULL DEFAULT 0,
    published_at     timestamptz,
    -- Metrics: the latest reading (summed over parts) and when the worker reads next.
    metrics          jsonb,
    metrics_at       timestamptz,
    metrics_next_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    version          bigint      NOT NULL DEFAULT 1
);
-- ListPosts: newest publish time first.
CREATE INDEX posts_merchant_publish ON posts (merchant_id, publish_at DESC, id DESC);
CREATE INDEX posts_merchant_account ON posts (merchant_id, account_id, publish_at DESC, id DESC);
-- Publishers and the metrics reader look across merchants, so these two cannot lead
-- with merchant_id (like campaigns_dispatch).
CREATE INDEX posts_due ON posts (ready_at) WHERE status IN ('SCHEDULED', 'PUBLISHING');
CREATE INDEX posts_metrics_due ON posts (metrics_next_at) WHERE metrics_next_at IS NOT NULL;

-- ---------------------------------------------------------------- parts (the ledger)
CREATE TABLE post_parts (
    merchant_id  uuid        NOT NULL,
    post_id      uuid        NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    idx          integer     NOT NULL CHECK (idx >= 0),
    text         text        NOT NULL DEFAULT '',
    -- [{url, alt_text, declared, kind, mime_type, size_bytes, x_media_id, uploaded_at}]
    media        jsonb       NOT NULL DEFAULT '[]',
    -- {options: [...], duration_minutes}
    poll         jsonb,
    state        text        NOT NULL DEFAULT 'PENDING'
        CHECK (state IN ('PENDING', 'PUBLISHING', 'PUBLISHED', 'FAILED', 'DELETED')),
    attempts     integer     NOT NULL DEFAULT 0,
    -- When it was armed (the lookup after an unknown outcome starts a little before).
    armed_at     timestamptz,
    -- The X post it was sent as a reply to (the previous part's, for a thread).
    in_reply_to  text,
    x_post_id    text,
    url          text        NOT NULL DEFAULT '',
    published_at timestamptz,
    error        text        NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, post_id, idx)
);
-- An X post is recorded for one part only.
CREATE UNIQUE INDEX post_parts_x_post ON post_parts (merchant_id, x_post_id)
    WHERE x_post_id IS NOT NULL;

-- ---------------------------------------------------------------- metrics history
-- One row per part per reading; a post's parts are read together, so a reading of
-- the post is the rows sharing observed_at.
CREATE TABLE post_metrics (
    merchant_id    uuid        NOT NULL,
    post_id        uuid        NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    observed_at    timestamptz NOT NULL,
    idx            integer     NOT NULL,
    impressions    bigint      NOT NULL DEFAULT 0,
    likes          bigint      NOT NULL DEFAULT 0,
    reposts        bigint      NOT NULL DEFAULT 0,
    replies        bigint      NOT NULL DEFAULT 0,
    quotes         bigint      NOT NULL DEFAULT 0,
    bookmarks      bigint      NOT NULL DEFAULT 0,
    -- NULL when X gave no non-public metrics (not the account's own, or too old).
    url_clicks     bigint,
    profile_clicks bigint,
    PRIMARY KEY (merchant_id, post_id, observed_at, idx)
);
