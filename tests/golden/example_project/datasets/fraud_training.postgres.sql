-- On postgres, the on-demand features are computed after this query, by DuckDB over its result (table "result"),
-- as the online evaluator computes them:
--   SELECT
--     "txn_id",
--     "user_id",
--     "merchant_id",
--     "amount",
--     "channel",
--     "event_ts",
--     "is_fraud",
--     "user__txn_count__1d",
--     "user__txn_count__7d",
--     "user__amount_sum__7d",
--     "user__amount_sum__30d",
--     "user__amount_avg__30d",
--     "user__amount_max__30d",
--     "user__large_txn_count__30d",
--     "user__night_txn_count__7d",
--     "user__chargeback_count__90d",
--     "merchant__txn_count__7d",
--     "merchant__fraud_rate__30d",
--     ROUND(
--       CAST("__skewless_input_amount" AS DOUBLE) / NULLIF(CAST("__skewless_input_user__amount_avg__30d" AS DOUBLE), 0),
--       4
--     ) AS "payment__amount_to_avg__30d",
--     CAST("__skewless_input_amount" AS DOUBLE) > COALESCE(CAST("__skewless_input_user__amount_max__30d" AS DOUBLE), 0) AS "payment__exceeds_max__30d",
--     COALESCE(CAST("__skewless_input_user__txn_count__1d" AS BIGINT), 0) // 5 AS "payment__burst_level__1d",
--     DATE_DIFF(
--       'DAY',
--       CAST("__skewless_input_user__signup_ts" AS TIMESTAMP),
--       CAST("__skewless_input_event_ts" AS TIMESTAMP)
--     ) AS "payment__account_age_days",
--     CASE
--       WHEN CAST("__skewless_input_channel" AS TEXT) = 'web'
--       AND HOUR(CAST("__skewless_input_event_ts" AS TIMESTAMP)) < 6
--       THEN 'night_web'
--       WHEN CAST("__skewless_input_channel" AS TEXT) = 'pos'
--       THEN 'in_person'
--       ELSE LOWER(CAST("__skewless_input_channel" AS TEXT)) || '_' || COALESCE(CAST("__skewless_input_merchant__category" AS TEXT), 'unknown')
--     END AS "payment__context",
--     "user__country",
--     "merchant__category"
--   FROM "result"
WITH "__skewless_spine" AS (
  SELECT
    "txn_id",
    "user_id",
    "merchant_id",
    "amount",
    "channel",
    "event_ts",
    "is_fraud",
    ROW_NUMBER() OVER () AS "__skewless_row",
    CAST("event_ts" AS TIMESTAMP) AS "__skewless_ts"
  FROM "features"."labelled_payments"
)
SELECT
  "spine"."txn_id",
  "spine"."user_id",
  "spine"."merchant_id",
  "spine"."amount",
  "spine"."channel",
  "spine"."event_ts",
  "spine"."is_fraud",
  CASE
    WHEN "f0"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '30 DAY'
    THEN "f0"."user__txn_count__1d"
  END AS "user__txn_count__1d",
  CASE
    WHEN "f0"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '30 DAY'
    THEN "f0"."user__txn_count__7d"
  END AS "user__txn_count__7d",
  CASE
    WHEN "f1"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '30 DAY'
    THEN "f1"."user__amount_sum__7d"
  END AS "user__amount_sum__7d",
  CASE
    WHEN "f1"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '30 DAY'
    THEN "f1"."user__amount_sum__30d"
  END AS "user__amount_sum__30d",
  CASE
    WHEN "f1"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '30 DAY'
    THEN "f1"."user__amount_avg__30d"
  END AS "user__amount_avg__30d",
  CASE
    WHEN "f1"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '30 DAY'
    THEN "f1"."user__amount_max__30d"
  END AS "user__amount_max__30d",
  CASE
    WHEN "f2"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '30 DAY'
    THEN "f2"."user__large_txn_count__30d"
  END AS "user__large_txn_count__30d",
  CASE
    WHEN "f2"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '30 DAY'
    THEN "f2"."user__night_txn_count__7d"
  END AS "user__night_txn_count__7d",
  CASE
    WHEN "f3"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '90 DAY'
    THEN "f3"."user__chargeback_count__90d"
  END AS "user__chargeback_count__90d",
  CASE
    WHEN "f4"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '7 DAY'
    THEN "f4"."merchant__txn_count__7d"
  END AS "merchant__txn_count__7d",
  CASE
    WHEN "f5"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '30 DAY'
    THEN "f5"."merchant__fraud_rate__30d"
  END AS "merchant__fraud_rate__30d",
  "f6"."user__country" AS "user__country",
  "f7"."merchant__category" AS "merchant__category",
  CASE
    WHEN "f1"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '30 DAY'
    THEN "f1"."user__amount_avg__30d"
  END AS "__skewless_input_user__amount_avg__30d",
  "spine"."amount" AS "__skewless_input_amount",
  CASE
    WHEN "f1"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '30 DAY'
    THEN "f1"."user__amount_max__30d"
  END AS "__skewless_input_user__amount_max__30d",
  CASE
    WHEN "f0"."event_ts" >= "spine"."__skewless_ts" - INTERVAL '30 DAY'
    THEN "f0"."user__txn_count__1d"
  END AS "__skewless_input_user__txn_count__1d",
  "f6"."user__signup_ts" AS "__skewless_input_user__signup_ts",
  "spine"."event_ts" AS "__skewless_input_event_ts",
  "f7"."merchant__category" AS "__skewless_input_merchant__category",
  "spine"."channel" AS "__skewless_input_channel"
FROM "__skewless_spine" AS spine
LEFT JOIN LATERAL (
  SELECT
    "f"."event_ts",
    "f"."user__txn_count__1d",
    "f"."user__txn_count__7d"
  FROM "features"."user_transaction_counts" AS f
  WHERE
    "f"."user_id" = "spine"."user_id" AND "f"."event_ts" <= "spine"."__skewless_ts"
  ORDER BY
    "f"."event_ts" DESC NULLS LAST,
    "f"."user__txn_count__1d" DESC NULLS LAST,
    "f"."user__txn_count__7d" DESC NULLS LAST,
    "f"."user__txn_count__30d" DESC NULLS LAST
  LIMIT 1
) AS "f0"
  ON TRUE
LEFT JOIN LATERAL (
  SELECT
    "f"."event_ts",
    "f"."user__amount_sum__7d",
    "f"."user__amount_sum__30d",
    "f"."user__amount_avg__30d",
    "f"."user__amount_max__30d"
  FROM "features"."user_spend" AS f
  WHERE
    "f"."user_id" = "spine"."user_id" AND "f"."event_ts" <= "spine"."__skewless_ts"
  ORDER BY
    "f"."event_ts" DESC NULLS LAST,
    "f"."user__amount_sum__7d" DESC NULLS LAST,
    "f"."user__amount_sum__30d" DESC NULLS LAST,
    "f"."user__amount_avg__30d" DESC NULLS LAST,
    "f"."user__amount_max__30d" DESC NULLS LAST
  LIMIT 1
) AS "f1"
  ON TRUE
LEFT JOIN LATERAL (
  SELECT
    "f"."event_ts",
    "f"."user__large_txn_count__30d",
    "f"."user__night_txn_count__7d"
  FROM "features"."user_risky_behaviour" AS f
  WHERE
    "f"."user_id" = "spine"."user_id" AND "f"."event_ts" <= "spine"."__skewless_ts"
  ORDER BY
    "f"."event_ts" DESC NULLS LAST,
    "f"."user__large_txn_count__30d" DESC NULLS LAST,
    "f"."user__night_txn_count__7d" DESC NULLS LAST
  LIMIT 1
) AS "f2"
  ON TRUE
LEFT JOIN LATERAL (
  SELECT
    "f"."event_ts",
    "f"."user__chargeback_count__90d"
  FROM "features"."user_chargebacks" AS f
  WHERE
    "f"."user_id" = "spine"."user_id" AND "f"."event_ts" <= "spine"."__skewless_ts"
  ORDER BY
    "f"."event_ts" DESC NULLS LAST,
    "f"."user__chargeback_count__90d" DESC NULLS LAST,
    "f"."user__chargeback_amount__90d" DESC NULLS LAST
  LIMIT 1
) AS "f3"
  ON TRUE
LEFT JOIN LATERAL (
  SELECT
    "f"."event_ts",
    "f"."merchant__txn_count__7d"
  FROM "features"."merchant_volume" AS f
  WHERE
    "f"."merchant_id" = "spine"."merchant_id"
    AND "f"."event_ts" <= "spine"."__skewless_ts"
  ORDER BY
    "f"."event_ts" DESC NULLS LAST,
    "f"."merchant__txn_count__7d" DESC NULLS LAST,
    "f"."merchant__amount_sum__7d" DESC NULLS LAST
  LIMIT 1
) AS "f4"
  ON TRUE
LEFT JOIN LATERAL (
  SELECT
    "f"."event_ts",
    "f"."merchant__fraud_rate__30d"
  FROM "features"."merchant_fraud_rate" AS f
  WHERE
    "f"."merchant_id" = "spine"."merchant_id"
    AND "f"."event_ts" <= "spine"."__skewless_ts"
  ORDER BY
    "f"."event_ts" DESC NULLS LAST,
    "f"."merchant__fraud_rate__30d" DESC NULLS LAST
  LIMIT 1
) AS "f5"
  ON TRUE
LEFT JOIN LATERAL (
  SELECT
    "f"."updated_ts",
    "f"."user__country",
    "f"."user__signup_ts"
  FROM "features"."user_profile" AS f
  WHERE
    "f"."user_id" = "spine"."user_id" AND "f"."updated_ts" <= "spine"."__skewless_ts"
  ORDER BY
    "f"."updated_ts" DESC NULLS LAST,
    "f"."user__country" DESC NULLS LAST,
    "f"."user__signup_ts" DESC NULLS LAST
  LIMIT 1
) AS "f6"
  ON TRUE
LEFT JOIN LATERAL (
  SELECT
    "f"."onboarded_ts",
    "f"."merchant__category"
  FROM "features"."merchant_profile" AS f
  WHERE
    "f"."merchant_id" = "spine"."merchant_id"
    AND "f"."onboarded_ts" <= "spine"."__skewless_ts"
  ORDER BY
    "f"."onboarded_ts" DESC NULLS LAST,
    "f"."merchant__category" DESC NULLS LAST
  LIMIT 1
) AS "f7"
  ON TRUE
ORDER BY
  "spine"."__skewless_row"
