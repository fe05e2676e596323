CREATE SCHEMA IF NOT EXISTS "features";

DROP TABLE IF EXISTS "features"."user_profile__skewless_tmp";

BEGIN;

CREATE TABLE "features"."user_profile__skewless_tmp" AS
SELECT
  "user_id",
  "updated_ts",
  "user__country",
  "user__signup_ts"
FROM (
  SELECT
    "user_id",
    "updated_ts",
    "user__country",
    "user__signup_ts",
    ROW_NUMBER() OVER (
      PARTITION BY "user_id", "updated_ts"
      ORDER BY "user__country" DESC, "user__signup_ts" DESC
    ) AS "__skewless_rn"
  FROM (
    SELECT
      user_id,
      updated_ts,
      country AS user__country,
      signup_ts AS user__signup_ts
    FROM "raw"."users"
  ) AS model
) AS ranked
WHERE
  "__skewless_rn" = 1
ORDER BY
  "user_id",
  "updated_ts";

ALTER TABLE "features"."user_profile__skewless_tmp"
RENAME TO "user_profile";

COMMIT;
