-- Inbox ingestion (webhook inbox processing, follow state, interactions).
SELECT 1;
