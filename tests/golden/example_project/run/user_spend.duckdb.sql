CREATE SCHEMA IF NOT EXISTS "features";

DROP TABLE IF EXISTS "features"."user_spend__skewless_tmp";

BEGIN;

CREATE TABLE "features"."user_spend__skewless_tmp" AS
SELECT
  "user_id",
  "event_ts",
  "user__amount_sum__7d",
  "user__amount_sum__30d",
  "user__amount_avg__30d",
  "user__amount_max__30d"
FROM (
  SELECT
    "user_id",
    "event_ts",
    "user__amount_sum__7d",
    "user__amount_sum__30d",
    "user__amount_avg__30d",
    "user__amount_max__30d",
    ROW_NUMBER() OVER (
      PARTITION BY "user_id", "event_ts"
      ORDER BY "user__amount_sum__7d" DESC, "user__amount_sum__30d" DESC, "user__amount_avg__30d" DESC, "user__amount_max__30d" DESC
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
      SUM(amount) OVER (
        PARTITION BY user_id
        ORDER BY event_ts
        range BETWEEN INTERVAL '7' DAY preceding AND CURRENT ROW
      ) AS user__amount_sum__7d,
      SUM(amount) OVER (
        PARTITION BY user_id
        ORDER BY event_ts
        range BETWEEN INTERVAL '30' DAY preceding AND CURRENT ROW
      ) AS user__amount_sum__30d,
      AVG(amount) OVER (
        PARTITION BY user_id
        ORDER BY event_ts
        range BETWEEN INTERVAL '30' DAY preceding AND CURRENT ROW
      ) AS user__amount_avg__30d,
      MAX(amount) OVER (
        PARTITION BY user_id
        ORDER BY event_ts
        range BETWEEN INTERVAL '30' DAY preceding AND CURRENT ROW
      ) AS user__amount_max__30d
    FROM "__skewless_cte__stg_transactions"
  ) AS model
) AS ranked
WHERE
  "__skewless_rn" = 1
ORDER BY
  "user_id",
  "event_ts";

ALTER TABLE "features"."user_spend__skewless_tmp"
RENAME TO "user_spend";

COMMIT;
