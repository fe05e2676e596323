CREATE SCHEMA IF NOT EXISTS "features";

DROP TABLE IF EXISTS "features"."user_chargebacks__skewless_tmp";

BEGIN;

CREATE TABLE "features"."user_chargebacks__skewless_tmp" AS
SELECT
  "user_id",
  "event_ts",
  "user__chargeback_count__90d",
  "user__chargeback_amount__90d"
FROM (
  SELECT
    "user_id",
    "event_ts",
    "user__chargeback_count__90d",
    "user__chargeback_amount__90d",
    ROW_NUMBER() OVER (
      PARTITION BY "user_id", "event_ts"
      ORDER BY "user__chargeback_count__90d" DESC, "user__chargeback_amount__90d" DESC
    ) AS "__skewless_rn"
  FROM (
    SELECT
      user_id,
      event_ts,
      COUNT(*) OVER (
        PARTITION BY user_id
        ORDER BY event_ts
        range BETWEEN INTERVAL '90' DAY preceding AND CURRENT ROW
      ) AS user__chargeback_count__90d,
      SUM(amount) OVER (
        PARTITION BY user_id
        ORDER BY event_ts
        range BETWEEN INTERVAL '90' DAY preceding AND CURRENT ROW
      ) AS user__chargeback_amount__90d
    FROM "features"."stg_chargebacks"
  ) AS model
) AS ranked
WHERE
  "__skewless_rn" = 1
ORDER BY
  "user_id",
  "event_ts";

ALTER TABLE "features"."user_chargebacks__skewless_tmp"
RENAME TO "user_chargebacks";

COMMIT;
