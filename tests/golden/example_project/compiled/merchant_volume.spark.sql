WITH deduplicated AS (
  SELECT
    *
  FROM (
    SELECT
      *,
      ROW_NUMBER() OVER (PARTITION BY txn_id ORDER BY created_ts NULLS LAST) AS _w
    FROM `raw`.`transactions`
  ) AS _t
  WHERE
    _w = 1
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
/* Incremental: each run appends the rows past the table's newest event_ts (minus a 2-day lookback for */
/* late events); rolling windows are computed over the full history, so values stay exact. */
SELECT
  merchant_id,
  event_ts,
  COUNT(*) OVER (
    PARTITION BY merchant_id
    ORDER BY event_ts NULLS LAST
    range BETWEEN INTERVAL '7' DAY preceding AND CURRENT ROW
  ) AS merchant__txn_count__7d,
  SUM(amount) OVER (
    PARTITION BY merchant_id
    ORDER BY event_ts NULLS LAST
    range BETWEEN INTERVAL '7' DAY preceding AND CURRENT ROW
  ) AS merchant__amount_sum__7d
FROM `__skewless_cte__stg_transactions`
