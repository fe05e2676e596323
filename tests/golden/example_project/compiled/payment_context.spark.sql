/* Computed per payment: online from the request and the stored features, offline in the training-set query. */
SELECT
  ROUND(amount / NULLIF(user__amount_avg__30d, 0), 4) AS payment__amount_to_avg__30d,
  amount > COALESCE(user__amount_max__30d, 0) AS payment__exceeds_max__30d,
  COALESCE(user__txn_count__1d, 0) DIV 5 AS payment__burst_level__1d,
  DATEDIFF(DAY, user__signup_ts, event_ts) AS payment__account_age_days,
  CASE
    WHEN channel = 'web' AND HOUR(event_ts) < 6
    THEN 'night_web'
    WHEN channel = 'pos'
    THEN 'in_person'
    ELSE LOWER(channel) || '_' || COALESCE(merchant__category, 'unknown')
  END AS payment__context
