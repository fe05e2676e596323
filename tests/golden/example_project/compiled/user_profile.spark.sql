SELECT
  user_id,
  updated_ts,
  country AS user__country,
  signup_ts AS user__signup_ts
FROM `raw`.`users`
