CREATE SCHEMA IF NOT EXISTS "features";

DROP TABLE IF EXISTS "features"."user_chargebacks__skewless_tmp";

BEGIN;

CREATE TABLE "features"."user_chargebacks__skewless_tmp" AS
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
FROM "features"."stg_chargebacks";

ALTER TABLE "features"."user_chargebacks__skewless_tmp"
RENAME TO "user_chargebacks";

COMMIT;
