-- Contacts and conversations services (search indexes, live event stream support).
SELECT 1;
