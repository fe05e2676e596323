CREATE SCHEMA IF NOT EXISTS "features";

DROP TABLE IF EXISTS "features"."user_txn_windows__skewless_tmp";

BEGIN;

CREATE TABLE "features"."user_txn_windows__skewless_tmp" AS
SELECT
  "user_id",
  "event_ts",
  "amount",
  "merchant_id"
FROM (
  SELECT
    *
  FROM "raw"."transactions"
) AS events;

ALTER TABLE "features"."user_txn_windows__skewless_tmp"
RENAME TO "user_txn_windows";

COMMIT;
