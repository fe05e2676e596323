SELECT
  `user_id`,
  `event_ts`,
  `amount`,
  `merchant_id`
FROM (
  SELECT
    *
  FROM `raw`.`transactions`
) AS events
