CREATE SCHEMA IF NOT EXISTS "features";

DROP TABLE IF EXISTS "features"."merchant_volume__skewless_tmp";

BEGIN;

CREATE TABLE "features"."merchant_volume__skewless_tmp" AS
SELECT
  "merchant_id",
  "event_ts",
  "merchant__txn_count__7d",
  "merchant__amount_sum__7d"
FROM (
  SELECT
    "merchant_id",
    "event_ts",
    "merchant__txn_count__7d",
    "merchant__amount_sum__7d",
    ROW_NUMBER() OVER (
      PARTITION BY "merchant_id", "event_ts"
      ORDER BY "merchant__txn_count__7d" DESC, "merchant__amount_sum__7d" DESC
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
    /* Incremental: each run appends the rows past the table's newest event_ts (minus a 2-day lookback for */
    /* late events); rolling windows are computed over the full history, so values stay exact. */
    SELECT
      merchant_id,
      event_ts,
      COUNT(*) OVER (
        PARTITION BY merchant_id
        ORDER BY event_ts
        range BETWEEN INTERVAL '7' DAY preceding AND CURRENT ROW
      ) AS merchant__txn_count__7d,
      SUM(amount) OVER (
        PARTITION BY merchant_id
        ORDER BY event_ts
        range BETWEEN INTERVAL '7' DAY preceding AND CURRENT ROW
      ) AS merchant__amount_sum__7d
    FROM "__skewless_cte__stg_transactions"
  ) AS model
) AS ranked
WHERE
  "__skewless_rn" = 1
ORDER BY
  "merchant_id",
  "event_ts";

ALTER TABLE "features"."merchant_volume__skewless_tmp"
RENAME TO "merchant_volume";

COMMIT;
