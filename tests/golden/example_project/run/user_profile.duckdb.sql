CREATE SCHEMA IF NOT EXISTS "features";

BEGIN;

CREATE OR REPLACE VIEW "features"."user_profile" AS
SELECT
  user_id,
  updated_ts,
  country AS user__country,
  signup_ts AS user__signup_ts
FROM "raw"."users";

COMMIT;
