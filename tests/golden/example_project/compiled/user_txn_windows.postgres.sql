SELECT
  "user_id",
  "event_ts",
  "amount",
  "merchant_id"
FROM (
  WITH "__skewless_cte__stg_transactions" AS (
    WITH deduplicated AS (
      SELECT
        *
      FROM (
        SELECT
          *,
          ROW_NUMBER() OVER (PARTITION BY txn_id ORDER BY created_ts) AS _w
        FROM "raw"."transactions"
      ) AS _t
      WHERE
        _w = 1
    )
    SELECT
      txn_id,
      user_id,
      merchant_id,
      amount,
      channel,
      (
        event_ts + (
          CAST(CURRENT_DATE AS DATE) - CAST('2026-07-01' AS DATE)
        ) * INTERVAL '1 DAY'
      ) AS event_ts,
      (
        created_ts + (
          CAST(CURRENT_DATE AS DATE) - CAST('2026-07-01' AS DATE)
        ) * INTERVAL '1 DAY'
      ) AS created_ts,
      is_fraud
    FROM deduplicated
  )
  SELECT
    *
  FROM "__skewless_cte__stg_transactions"
) AS events
