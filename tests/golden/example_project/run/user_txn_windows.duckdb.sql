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
  WITH "__skewless_cte__stg_transactions" AS (
    WITH deduplicated AS (
      SELECT
        *
      FROM "raw"."transactions"
      QUALIFY
        ROW_NUMBER() OVER (PARTITION BY txn_id ORDER BY created_ts) = 1
    )
    SELECT
      txn_id,
      user_id,
      merchant_id,
      amount,
      channel,
      (
        event_ts + DATE_DIFF('DAY', CAST('2026-07-01' AS DATE), CURRENT_DATE) * INTERVAL '1' DAY
      ) AS event_ts,
      (
        created_ts + DATE_DIFF('DAY', CAST('2026-07-01' AS DATE), CURRENT_DATE) * INTERVAL '1' DAY
      ) AS created_ts,
      is_fraud
    FROM deduplicated
  )
  SELECT
    *
  FROM "__skewless_cte__stg_transactions"
) AS events;

ALTER TABLE "features"."user_txn_windows__skewless_tmp"
RENAME TO "user_txn_windows";

COMMIT;
