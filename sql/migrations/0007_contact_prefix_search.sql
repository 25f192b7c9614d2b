-- Search terms of one or two characters match the start of the username or display
-- name (a trigram index cannot serve them, and a substring scan of a merchant's whole
-- contact list took seconds at 1M contacts). These btree indexes serve
-- lower(column) LIKE 'ab%'; they lead with merchant_id like every tenant index.
CREATE INDEX contacts_merchant_username_prefix
    ON contacts (merchant_id, lower(username) text_pattern_ops);
CREATE INDEX contacts_merchant_display_name_prefix
    ON contacts (merchant_id, lower(display_name) text_pattern_ops);
