CREATE SCHEMA IF NOT EXISTS "features";

DROP TABLE IF EXISTS "features"."merchant_profile__skewless_tmp";

BEGIN;

CREATE TABLE "features"."merchant_profile__skewless_tmp" AS
SELECT
  "merchant_id",
  "onboarded_ts",
  "merchant__category"
FROM (
  SELECT
    "merchant_id",
    "onboarded_ts",
    "merchant__category",
    ROW_NUMBER() OVER (PARTITION BY "merchant_id", "onboarded_ts" ORDER BY "merchant__category" DESC) AS "__skewless_rn"
  FROM (
    SELECT
      merchant_id,
      onboarded_ts,
      category AS merchant__category
    FROM "raw"."merchants"
  ) AS model
) AS ranked
WHERE
  "__skewless_rn" = 1
ORDER BY
  "merchant_id",
  "onboarded_ts";

ALTER TABLE "features"."merchant_profile__skewless_tmp"
RENAME TO "merchant_profile";

COMMIT;
