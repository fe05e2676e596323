CREATE SCHEMA IF NOT EXISTS "features";

DROP TABLE IF EXISTS "features"."user_transaction_counts__skewless_tmp";

BEGIN;

CREATE TABLE "features"."user_transaction_counts__skewless_tmp" AS
SELECT
  "user_id",
  "event_ts",
  "user__txn_count__1d",
  "user__txn_count__7d",
  "user__txn_count__30d"
FROM (
  SELECT
    "user_id",
    "event_ts",
    "user__txn_count__1d",
    "user__txn_count__7d",
    "user__txn_count__30d",
    ROW_NUMBER() OVER (
      PARTITION BY "user_id", "event_ts"
      ORDER BY "user__txn_count__1d" DESC, "user__txn_count__7d" DESC, "user__txn_count__30d" DESC
    ) AS "__skewless_rn"
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
      user_id,
      event_ts,
      COUNT(*) OVER (
        PARTITION BY user_id
        ORDER BY event_ts
        range BETWEEN INTERVAL '1' DAY preceding AND CURRENT ROW
      ) AS user__txn_count__1d,
      COUNT(*) OVER (
        PARTITION BY user_id
        ORDER BY event_ts
        range BETWEEN INTERVAL '7' DAY preceding AND CURRENT ROW
      ) AS user__txn_count__7d,
      COUNT(*) OVER (
        PARTITION BY user_id
        ORDER BY event_ts
        range BETWEEN INTERVAL '30' DAY preceding AND CURRENT ROW
      ) AS user__txn_count__30d
    FROM "__skewless_cte__stg_transactions"
  ) AS model
) AS ranked
WHERE
  "__skewless_rn" = 1
ORDER BY
  "user_id",
  "event_ts";

ALTER TABLE "features"."user_transaction_counts__skewless_tmp"
RENAME TO "user_transaction_counts";

COMMIT;
