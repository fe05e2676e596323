CREATE SCHEMA IF NOT EXISTS "features";

DROP TABLE IF EXISTS "features"."merchant_profile__skewless_tmp";

BEGIN;

CREATE TABLE "features"."merchant_profile__skewless_tmp" AS
SELECT
  merchant_id,
  onboarded_ts,
  category AS merchant__category
FROM "raw"."merchants";

ALTER TABLE "features"."merchant_profile__skewless_tmp"
RENAME TO "merchant_profile";

COMMIT;
