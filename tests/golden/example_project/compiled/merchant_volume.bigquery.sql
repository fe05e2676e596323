WITH `__skewless_cte__stg_transactions` AS (
  WITH deduplicated AS (
    SELECT
      *
    FROM `raw`.`transactions`
    QUALIFY
      ROW_NUMBER() OVER (PARTITION BY txn_id ORDER BY created_ts NULLS LAST) = 1
  )
  SELECT
    txn_id,
    user_id,
    merchant_id,
    amount,
    channel,
    (
      event_ts + DATE_DIFF(CURRENT_DATE, CAST('2026-07-01' AS DATE), DAY) * INTERVAL '1' DAY
    ) AS event_ts,
    (
      created_ts + DATE_DIFF(CURRENT_DATE, CAST('2026-07-01' AS DATE), DAY) * INTERVAL '1' DAY
    ) AS created_ts,
    is_fraud
  FROM deduplicated
)
/* Incremental: each run appends the rows past the table's newest event_ts (minus a 2-day lookback for */
/* late events); rolling windows are computed over the full history, so values stay exact. */
SELECT
  merchant_id,
  event_ts,
  COUNT(*) OVER (
    PARTITION BY merchant_id
    ORDER BY UNIX_MICROS(CAST(event_ts AS TIMESTAMP))
    range BETWEEN 604800000000 preceding AND CURRENT ROW
  ) AS merchant__txn_count__7d,
  SUM(amount) OVER (
    PARTITION BY merchant_id
    ORDER BY UNIX_MICROS(CAST(event_ts AS TIMESTAMP))
    range BETWEEN 604800000000 preceding AND CURRENT ROW
  ) AS merchant__amount_sum__7d
FROM `__skewless_cte__stg_transactions`
