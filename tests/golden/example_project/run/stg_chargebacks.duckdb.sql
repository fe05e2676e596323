CREATE SCHEMA IF NOT EXISTS "features";

BEGIN;

CREATE OR REPLACE VIEW "features"."stg_chargebacks" AS
SELECT
  c.txn_id,
  c.user_id,
  c.merchant_id,
  c.event_ts,
  c.amount
FROM "raw"."chargebacks" AS c;

COMMIT;
