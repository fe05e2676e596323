WITH deduplicated AS (
  SELECT
    *
  FROM `raw`.`transactions`
  QUALIFY
    ROW_NUMBER() OVER (PARTITION BY txn_id ORDER BY created_ts NULLS LAST) = 1
), `__skewless_cte__stg_transactions` AS (
  SELECT
    txn_id,
    user_id,
    merchant_id,
    amount,
    channel,
    (
      event_ts + DATEDIFF(DAY, CAST('2026-07-01' AS DATE), CURRENT_DATE) * INTERVAL '1' DAY
    ) AS event_ts,
    (
      created_ts + DATEDIFF(DAY, CAST('2026-07-01' AS DATE), CURRENT_DATE) * INTERVAL '1' DAY
    ) AS created_ts,
    is_fraud
  FROM deduplicated
)
SELECT
  `user_id`,
  `event_ts`,
  `amount`,
  `merchant_id`
FROM (
  SELECT
    *
  FROM `__skewless_cte__stg_transactions`
) AS events
