SELECT
  user_id,
  event_ts,
  COUNT(*) OVER (
    PARTITION BY user_id
    ORDER BY UNIX_MICROS(CAST(event_ts AS TIMESTAMP))
    range BETWEEN 7776000000000 preceding AND CURRENT ROW
  ) AS user__chargeback_count__90d,
  SUM(amount) OVER (
    PARTITION BY user_id
    ORDER BY UNIX_MICROS(CAST(event_ts AS TIMESTAMP))
    range BETWEEN 7776000000000 preceding AND CURRENT ROW
  ) AS user__chargeback_amount__90d
FROM `features`.`stg_chargebacks`
