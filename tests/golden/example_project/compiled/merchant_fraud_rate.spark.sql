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
), flagged AS (
  SELECT
    t.merchant_id,
    t.event_ts,
    CASE WHEN c.txn_id IS NULL THEN 0 ELSE 1 END AS charged_back
  FROM `__skewless_cte__stg_transactions` AS t
  LEFT JOIN `features`.`stg_chargebacks` AS c
    ON c.txn_id = t.txn_id AND c.event_ts <= t.event_ts
)
SELECT
  merchant_id,
  event_ts,
  (
    SUM(charged_back) OVER (
      PARTITION BY merchant_id
      ORDER BY event_ts NULLS LAST
      range BETWEEN INTERVAL '30' DAY preceding AND CURRENT ROW
    )
  ) / NULLIF(
    COUNT(*) OVER (
      PARTITION BY merchant_id
      ORDER BY event_ts NULLS LAST
      range BETWEEN INTERVAL '30' DAY preceding AND CURRENT ROW
    ),
    0
  ) AS merchant__fraud_rate__30d
FROM flagged
