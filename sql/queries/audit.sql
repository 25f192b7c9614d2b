-- The audit log of destructive RPCs (sql/migrations/0013_audit_log_and_global_tables.sql).

-- name: record
INSERT INTO audit_log (merchant_id, user_id, request_id, method, resource_id)
VALUES (%(merchant_id)s, %(user_id)s, %(request_id)s, %(method)s, %(resource_id)s);
