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
