SELECT
  merchant_id,
  onboarded_ts,
  category AS merchant__category
FROM `raw`.`merchants`
