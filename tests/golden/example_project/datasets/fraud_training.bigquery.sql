-- On bigquery, the on-demand features are computed after this query, by DuckDB over its result (table "result"),
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
WITH `__skewless_spine` AS (
  SELECT
    `txn_id`,
    `user_id`,
    `merchant_id`,
    `amount`,
    `channel`,
    `event_ts`,
    `is_fraud`,
    ROW_NUMBER() OVER () AS `__skewless_row`,
    CAST(`event_ts` AS DATETIME) AS `__skewless_ts`
  FROM `features`.`labelled_payments`
), `__skewless_f0` AS (
  SELECT
    `user_id`,
    `event_ts`,
    `user__txn_count__1d`,
    `user__txn_count__7d`,
    `event_ts` AS `__skewless_ts`
  FROM `features`.`user_transaction_counts`
), `__skewless_m0` AS (
  SELECT
    `__skewless_row`,
    `__skewless_match`
  FROM (
    SELECT
      `__skewless_row`,
      LAST_VALUE(`__skewless_match` IGNORE NULLS) OVER (
        PARTITION BY `user_id`
        ORDER BY `__skewless_ts`, `__skewless_is_spine` NULLS LAST
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `__skewless_match`
    FROM (
      SELECT
        `user_id`,
        `__skewless_ts`,
        `__skewless_ts` AS `__skewless_match`,
        0 AS `__skewless_is_spine`,
        CAST(NULL AS INT64) AS `__skewless_row`
      FROM `__skewless_f0`
      UNION ALL
      SELECT
        `user_id` AS `user_id`,
        `__skewless_ts`,
        CAST(NULL AS DATETIME) AS `__skewless_match`,
        1 AS `__skewless_is_spine`,
        `__skewless_row`
      FROM `__skewless_spine`
    ) AS stream
  ) AS carried
  WHERE
    NOT `__skewless_row` IS NULL
), `__skewless_f1` AS (
  SELECT
    `user_id`,
    `event_ts`,
    `user__amount_sum__7d`,
    `user__amount_sum__30d`,
    `user__amount_avg__30d`,
    `user__amount_max__30d`,
    `event_ts` AS `__skewless_ts`
  FROM `features`.`user_spend`
), `__skewless_m1` AS (
  SELECT
    `__skewless_row`,
    `__skewless_match`
  FROM (
    SELECT
      `__skewless_row`,
      LAST_VALUE(`__skewless_match` IGNORE NULLS) OVER (
        PARTITION BY `user_id`
        ORDER BY `__skewless_ts`, `__skewless_is_spine` NULLS LAST
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `__skewless_match`
    FROM (
      SELECT
        `user_id`,
        `__skewless_ts`,
        `__skewless_ts` AS `__skewless_match`,
        0 AS `__skewless_is_spine`,
        CAST(NULL AS INT64) AS `__skewless_row`
      FROM `__skewless_f1`
      UNION ALL
      SELECT
        `user_id` AS `user_id`,
        `__skewless_ts`,
        CAST(NULL AS DATETIME) AS `__skewless_match`,
        1 AS `__skewless_is_spine`,
        `__skewless_row`
      FROM `__skewless_spine`
    ) AS stream
  ) AS carried
  WHERE
    NOT `__skewless_row` IS NULL
), `__skewless_f2` AS (
  SELECT
    `user_id`,
    `event_ts`,
    `user__large_txn_count__30d`,
    `user__night_txn_count__7d`,
    `event_ts` AS `__skewless_ts`
  FROM `features`.`user_risky_behaviour`
), `__skewless_m2` AS (
  SELECT
    `__skewless_row`,
    `__skewless_match`
  FROM (
    SELECT
      `__skewless_row`,
      LAST_VALUE(`__skewless_match` IGNORE NULLS) OVER (
        PARTITION BY `user_id`
        ORDER BY `__skewless_ts`, `__skewless_is_spine` NULLS LAST
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `__skewless_match`
    FROM (
      SELECT
        `user_id`,
        `__skewless_ts`,
        `__skewless_ts` AS `__skewless_match`,
        0 AS `__skewless_is_spine`,
        CAST(NULL AS INT64) AS `__skewless_row`
      FROM `__skewless_f2`
      UNION ALL
      SELECT
        `user_id` AS `user_id`,
        `__skewless_ts`,
        CAST(NULL AS DATETIME) AS `__skewless_match`,
        1 AS `__skewless_is_spine`,
        `__skewless_row`
      FROM `__skewless_spine`
    ) AS stream
  ) AS carried
  WHERE
    NOT `__skewless_row` IS NULL
), `__skewless_f3` AS (
  SELECT
    `user_id`,
    `event_ts`,
    `user__chargeback_count__90d`,
    `event_ts` AS `__skewless_ts`
  FROM `features`.`user_chargebacks`
), `__skewless_m3` AS (
  SELECT
    `__skewless_row`,
    `__skewless_match`
  FROM (
    SELECT
      `__skewless_row`,
      LAST_VALUE(`__skewless_match` IGNORE NULLS) OVER (
        PARTITION BY `user_id`
        ORDER BY `__skewless_ts`, `__skewless_is_spine` NULLS LAST
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `__skewless_match`
    FROM (
      SELECT
        `user_id`,
        `__skewless_ts`,
        `__skewless_ts` AS `__skewless_match`,
        0 AS `__skewless_is_spine`,
        CAST(NULL AS INT64) AS `__skewless_row`
      FROM `__skewless_f3`
      UNION ALL
      SELECT
        `user_id` AS `user_id`,
        `__skewless_ts`,
        CAST(NULL AS DATETIME) AS `__skewless_match`,
        1 AS `__skewless_is_spine`,
        `__skewless_row`
      FROM `__skewless_spine`
    ) AS stream
  ) AS carried
  WHERE
    NOT `__skewless_row` IS NULL
), `__skewless_f4` AS (
  SELECT
    `merchant_id`,
    `event_ts`,
    `merchant__txn_count__7d`,
    `event_ts` AS `__skewless_ts`
  FROM `features`.`merchant_volume`
), `__skewless_m4` AS (
  SELECT
    `__skewless_row`,
    `__skewless_match`
  FROM (
    SELECT
      `__skewless_row`,
      LAST_VALUE(`__skewless_match` IGNORE NULLS) OVER (
        PARTITION BY `merchant_id`
        ORDER BY `__skewless_ts`, `__skewless_is_spine` NULLS LAST
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `__skewless_match`
    FROM (
      SELECT
        `merchant_id`,
        `__skewless_ts`,
        `__skewless_ts` AS `__skewless_match`,
        0 AS `__skewless_is_spine`,
        CAST(NULL AS INT64) AS `__skewless_row`
      FROM `__skewless_f4`
      UNION ALL
      SELECT
        `merchant_id` AS `merchant_id`,
        `__skewless_ts`,
        CAST(NULL AS DATETIME) AS `__skewless_match`,
        1 AS `__skewless_is_spine`,
        `__skewless_row`
      FROM `__skewless_spine`
    ) AS stream
  ) AS carried
  WHERE
    NOT `__skewless_row` IS NULL
), `__skewless_f5` AS (
  SELECT
    `merchant_id`,
    `event_ts`,
    `merchant__fraud_rate__30d`,
    `event_ts` AS `__skewless_ts`
  FROM `features`.`merchant_fraud_rate`
), `__skewless_m5` AS (
  SELECT
    `__skewless_row`,
    `__skewless_match`
  FROM (
    SELECT
      `__skewless_row`,
      LAST_VALUE(`__skewless_match` IGNORE NULLS) OVER (
        PARTITION BY `merchant_id`
        ORDER BY `__skewless_ts`, `__skewless_is_spine` NULLS LAST
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `__skewless_match`
    FROM (
      SELECT
        `merchant_id`,
        `__skewless_ts`,
        `__skewless_ts` AS `__skewless_match`,
        0 AS `__skewless_is_spine`,
        CAST(NULL AS INT64) AS `__skewless_row`
      FROM `__skewless_f5`
      UNION ALL
      SELECT
        `merchant_id` AS `merchant_id`,
        `__skewless_ts`,
        CAST(NULL AS DATETIME) AS `__skewless_match`,
        1 AS `__skewless_is_spine`,
        `__skewless_row`
      FROM `__skewless_spine`
    ) AS stream
  ) AS carried
  WHERE
    NOT `__skewless_row` IS NULL
), `__skewless_f6` AS (
  SELECT
    `user_id`,
    `updated_ts`,
    `user__country`,
    `user__signup_ts`,
    `updated_ts` AS `__skewless_ts`
  FROM `features`.`user_profile`
), `__skewless_m6` AS (
  SELECT
    `__skewless_row`,
    `__skewless_match`
  FROM (
    SELECT
      `__skewless_row`,
      LAST_VALUE(`__skewless_match` IGNORE NULLS) OVER (
        PARTITION BY `user_id`
        ORDER BY `__skewless_ts`, `__skewless_is_spine` NULLS LAST
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `__skewless_match`
    FROM (
      SELECT
        `user_id`,
        `__skewless_ts`,
        `__skewless_ts` AS `__skewless_match`,
        0 AS `__skewless_is_spine`,
        CAST(NULL AS INT64) AS `__skewless_row`
      FROM `__skewless_f6`
      UNION ALL
      SELECT
        `user_id` AS `user_id`,
        `__skewless_ts`,
        CAST(NULL AS DATETIME) AS `__skewless_match`,
        1 AS `__skewless_is_spine`,
        `__skewless_row`
      FROM `__skewless_spine`
    ) AS stream
  ) AS carried
  WHERE
    NOT `__skewless_row` IS NULL
), `__skewless_f7` AS (
  SELECT
    `merchant_id`,
    `onboarded_ts`,
    `merchant__category`,
    `onboarded_ts` AS `__skewless_ts`
  FROM `features`.`merchant_profile`
), `__skewless_m7` AS (
  SELECT
    `__skewless_row`,
    `__skewless_match`
  FROM (
    SELECT
      `__skewless_row`,
      LAST_VALUE(`__skewless_match` IGNORE NULLS) OVER (
        PARTITION BY `merchant_id`
        ORDER BY `__skewless_ts`, `__skewless_is_spine` NULLS LAST
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS `__skewless_match`
    FROM (
      SELECT
        `merchant_id`,
        `__skewless_ts`,
        `__skewless_ts` AS `__skewless_match`,
        0 AS `__skewless_is_spine`,
        CAST(NULL AS INT64) AS `__skewless_row`
      FROM `__skewless_f7`
      UNION ALL
      SELECT
        `merchant_id` AS `merchant_id`,
        `__skewless_ts`,
        CAST(NULL AS DATETIME) AS `__skewless_match`,
        1 AS `__skewless_is_spine`,
        `__skewless_row`
      FROM `__skewless_spine`
    ) AS stream
  ) AS carried
  WHERE
    NOT `__skewless_row` IS NULL
)
SELECT
  `spine`.`txn_id`,
  `spine`.`user_id`,
  `spine`.`merchant_id`,
  `spine`.`amount`,
  `spine`.`channel`,
  `spine`.`event_ts`,
  `spine`.`is_fraud`,
  CASE
    WHEN `f0`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '30' DAY
    THEN `f0`.`user__txn_count__1d`
  END AS `user__txn_count__1d`,
  CASE
    WHEN `f0`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '30' DAY
    THEN `f0`.`user__txn_count__7d`
  END AS `user__txn_count__7d`,
  CASE
    WHEN `f1`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '30' DAY
    THEN `f1`.`user__amount_sum__7d`
  END AS `user__amount_sum__7d`,
  CASE
    WHEN `f1`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '30' DAY
    THEN `f1`.`user__amount_sum__30d`
  END AS `user__amount_sum__30d`,
  CASE
    WHEN `f1`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '30' DAY
    THEN `f1`.`user__amount_avg__30d`
  END AS `user__amount_avg__30d`,
  CASE
    WHEN `f1`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '30' DAY
    THEN `f1`.`user__amount_max__30d`
  END AS `user__amount_max__30d`,
  CASE
    WHEN `f2`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '30' DAY
    THEN `f2`.`user__large_txn_count__30d`
  END AS `user__large_txn_count__30d`,
  CASE
    WHEN `f2`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '30' DAY
    THEN `f2`.`user__night_txn_count__7d`
  END AS `user__night_txn_count__7d`,
  CASE
    WHEN `f3`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '90' DAY
    THEN `f3`.`user__chargeback_count__90d`
  END AS `user__chargeback_count__90d`,
  CASE
    WHEN `f4`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '7' DAY
    THEN `f4`.`merchant__txn_count__7d`
  END AS `merchant__txn_count__7d`,
  CASE
    WHEN `f5`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '30' DAY
    THEN `f5`.`merchant__fraud_rate__30d`
  END AS `merchant__fraud_rate__30d`,
  `f6`.`user__country` AS `user__country`,
  `f7`.`merchant__category` AS `merchant__category`,
  CASE
    WHEN `f1`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '30' DAY
    THEN `f1`.`user__amount_avg__30d`
  END AS `__skewless_input_user__amount_avg__30d`,
  `spine`.`amount` AS `__skewless_input_amount`,
  CASE
    WHEN `f1`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '30' DAY
    THEN `f1`.`user__amount_max__30d`
  END AS `__skewless_input_user__amount_max__30d`,
  CASE
    WHEN `f0`.`event_ts` >= `spine`.`__skewless_ts` - INTERVAL '30' DAY
    THEN `f0`.`user__txn_count__1d`
  END AS `__skewless_input_user__txn_count__1d`,
  `f6`.`user__signup_ts` AS `__skewless_input_user__signup_ts`,
  `spine`.`event_ts` AS `__skewless_input_event_ts`,
  `f7`.`merchant__category` AS `__skewless_input_merchant__category`,
  `spine`.`channel` AS `__skewless_input_channel`
FROM `__skewless_spine` AS spine
LEFT JOIN `__skewless_m0` AS m0
  ON `m0`.`__skewless_row` = `spine`.`__skewless_row`
LEFT JOIN `__skewless_f0` AS f0
  ON `f0`.`user_id` = `spine`.`user_id`
  AND `f0`.`__skewless_ts` = `m0`.`__skewless_match`
LEFT JOIN `__skewless_m1` AS m1
  ON `m1`.`__skewless_row` = `spine`.`__skewless_row`
LEFT JOIN `__skewless_f1` AS f1
  ON `f1`.`user_id` = `spine`.`user_id`
  AND `f1`.`__skewless_ts` = `m1`.`__skewless_match`
LEFT JOIN `__skewless_m2` AS m2
  ON `m2`.`__skewless_row` = `spine`.`__skewless_row`
LEFT JOIN `__skewless_f2` AS f2
  ON `f2`.`user_id` = `spine`.`user_id`
  AND `f2`.`__skewless_ts` = `m2`.`__skewless_match`
LEFT JOIN `__skewless_m3` AS m3
  ON `m3`.`__skewless_row` = `spine`.`__skewless_row`
LEFT JOIN `__skewless_f3` AS f3
  ON `f3`.`user_id` = `spine`.`user_id`
  AND `f3`.`__skewless_ts` = `m3`.`__skewless_match`
LEFT JOIN `__skewless_m4` AS m4
  ON `m4`.`__skewless_row` = `spine`.`__skewless_row`
LEFT JOIN `__skewless_f4` AS f4
  ON `f4`.`merchant_id` = `spine`.`merchant_id`
  AND `f4`.`__skewless_ts` = `m4`.`__skewless_match`
LEFT JOIN `__skewless_m5` AS m5
  ON `m5`.`__skewless_row` = `spine`.`__skewless_row`
LEFT JOIN `__skewless_f5` AS f5
  ON `f5`.`merchant_id` = `spine`.`merchant_id`
  AND `f5`.`__skewless_ts` = `m5`.`__skewless_match`
LEFT JOIN `__skewless_m6` AS m6
  ON `m6`.`__skewless_row` = `spine`.`__skewless_row`
LEFT JOIN `__skewless_f6` AS f6
  ON `f6`.`user_id` = `spine`.`user_id`
  AND `f6`.`__skewless_ts` = `m6`.`__skewless_match`
LEFT JOIN `__skewless_m7` AS m7
  ON `m7`.`__skewless_row` = `spine`.`__skewless_row`
LEFT JOIN `__skewless_f7` AS f7
  ON `f7`.`merchant_id` = `spine`.`merchant_id`
  AND `f7`.`__skewless_ts` = `m7`.`__skewless_match`
ORDER BY
  `spine`.`__skewless_row`
