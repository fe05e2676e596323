SELECT
  user_id,
  event_ts,
  COUNT(*) OVER (
    PARTITION BY user_id
    ORDER BY event_ts NULLS LAST
    range BETWEEN INTERVAL '90' DAY preceding AND CURRENT ROW
  ) AS user__chargeback_count__90d,
  SUM(amount) OVER (
    PARTITION BY user_id
    ORDER BY event_ts NULLS LAST
    range BETWEEN INTERVAL '90' DAY preceding AND CURRENT ROW
  ) AS user__chargeback_amount__90d
FROM `features`.`stg_chargebacks`
