-- Analytics day rollups (issue 12 §5): the conversation episodes
-- (analytics_conversation_episodes, 0017) summed per merchant, account and LOCAL day,
-- so a 90-day daily report reads ~90 rows instead of every episode. Derived from the
-- episode rows only (never from events). The analytics-rollups consumer keeps them
-- incrementally: for each episode row it rewrites, it takes the old row's part out
-- of the (at most four) days it counted in and adds the new row's part, so an event
-- touches O(1) day rows however old the episode is. The rebuild sums every episode
-- afresh; both give the same rows (counts and sums are integers, values a sorted
-- multiset), and a day the consumer cannot take an old part out of is recomputed
-- from its episodes.
--
-- Days are cut in one time zone per merchant (analytics_day_zone). Reports use the
-- day rows only while that zone is the merchant's current one; after a time-zone
-- change they read the episode rows (as before this migration) until the consumer's
-- next pass for the merchant or a rebuild re-cuts every day in the new zone. A day
-- is [local midnight, next local midnight) in that zone: 23 or 25 hours across DST.
--
-- Percentiles stay exact: each day keeps each duration's values sorted, with their
-- cumulative counts over fixed log-scale value buckets (domain/analytics_days.py), so
-- a report over many days finds the bucket holding a rank from the summed counts and
-- sorts only that bucket's values (an array slice of each day), not every value.

CREATE TABLE analytics_day_zone (
    merchant_id  uuid PRIMARY KEY,
    time_zone    text NOT NULL
);

-- account_id '00000000-0000-0000-0000-000000000000' is the merchant's every account
-- (exact percentiles cannot be added up across accounts, so that row is its own).
-- Counts are of episodes by the day of the instant that defines them: opened_at
-- (opened, the status counts, bot_involved, escalated), first_human_reply_at (frt_*),
-- resolved_at (res_*), first_bot_reply_at (bot_*). For each duration D:
-- D_vals its non-null values in ascending order, D_cum the cumulative counts
-- (D_cum[b + 1] = values in buckets below b; 1-based), D_stat [count, sum, median, p90]
-- of D_vals (percentile_cont's interpolation).
CREATE TABLE analytics_episode_days (
    merchant_id      uuid    NOT NULL,
    account_id       uuid    NOT NULL,
    day              date    NOT NULL,
    opened           integer NOT NULL,
    open             integer NOT NULL,
    pending          integer NOT NULL,
    closed           integer NOT NULL,
    bot_involved     integer NOT NULL,
    escalated        integer NOT NULL,
    frt_n            integer NOT NULL,
    res_n            integer NOT NULL,
    res_bot_only     integer NOT NULL,
    bot_n            integer NOT NULL,
    bot_handled_n    integer NOT NULL,
    -- Exact sums in whole microseconds (domain.analytics_days.micros), so adding and
    -- subtracting episodes leaves what summing the day afresh gives.
    bot_handled_us   bigint  NOT NULL,
    frt_vals         double precision[] NOT NULL,
    frt_cum          integer[] NOT NULL,
    frt_stat         double precision[] NOT NULL,
    frt_bh_vals      double precision[] NOT NULL,
    frt_bh_cum       integer[] NOT NULL,
    frt_bh_stat      double precision[] NOT NULL,
    res_vals         double precision[] NOT NULL,
    res_cum          integer[] NOT NULL,
    res_stat         double precision[] NOT NULL,
    res_bh_vals      double precision[] NOT NULL,
    res_bh_cum       integer[] NOT NULL,
    res_bh_stat      double precision[] NOT NULL,
    bot_vals         double precision[] NOT NULL,
    bot_cum          integer[] NOT NULL,
    bot_stat         double precision[] NOT NULL,
    -- Per assignee (the episode's assignee_user_id, '' for none), in parallel arrays
    -- ordered by assignee: episodes opened, resolved and first-responded that day,
    -- and the count and exact sum of their first-response and resolution seconds.
    assignees        text[]  NOT NULL,
    a_opened         integer[] NOT NULL,
    a_resolved       integer[] NOT NULL,
    a_frt_n          integer[] NOT NULL,
    a_frt_us         bigint[] NOT NULL,
    a_res_n          integer[] NOT NULL,
    a_res_us         bigint[] NOT NULL,
    a_n              integer[] NOT NULL,
    PRIMARY KEY (merchant_id, account_id, day)
);

-- Recomputing a day finds its episodes by each instant (0017 indexes the others).
CREATE INDEX analytics_episodes_bot ON analytics_conversation_episodes (merchant_id, first_bot_reply_at)
    WHERE first_bot_reply_at IS NOT NULL;
