SELECT
  *
FROM "raw"."transactions"
QUALIFY
  ROW_NUMBER() OVER (PARTITION BY txn_id ORDER BY created_ts) = 1
