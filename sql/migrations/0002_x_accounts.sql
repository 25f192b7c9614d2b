-- X connections: the per-account DM budget ledger and token refresh bookkeeping.
SELECT 1;
