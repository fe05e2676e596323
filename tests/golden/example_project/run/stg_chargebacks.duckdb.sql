CREATE SCHEMA IF NOT EXISTS "features";

BEGIN;

CREATE OR REPLACE VIEW "features"."stg_chargebacks" AS
SELECT
  c.txn_id,
  c.user_id,
  c.merchant_id,
  (
    c.event_ts + DATE_DIFF('DAY', CAST('2026-07-01' AS DATE), CURRENT_DATE) * INTERVAL '1' DAY
  ) AS event_ts,
  c.amount
FROM "raw"."chargebacks" AS c;

COMMIT;
