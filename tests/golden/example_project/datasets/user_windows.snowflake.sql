WITH "__skewless_spine" AS (
  SELECT
    "user_id",
    "event_ts",
    ROW_NUMBER() OVER () AS "__skewless_row",
    CAST("event_ts" AS TIMESTAMP) AS "__skewless_ts"
  FROM raw.transactions
)
SELECT
  "spine"."user_id",
  "spine"."event_ts",
  CASE
    WHEN "spine"."__skewless_ts" IS NULL
    THEN NULL
    ELSE COALESCE("f0"."v0", CAST(0 AS BIGINT))
  END AS "user__payments__5m",
  "f0"."v1" AS "user__spend__7d",
  "f0"."v2" AS "user__last_amount__1h",
  CASE
    WHEN "spine"."__skewless_ts" IS NULL
    THEN NULL
    ELSE COALESCE("f0"."v3", CAST(0 AS BIGINT))
  END AS "user__merchants__1d"
FROM "__skewless_spine" AS spine
LEFT JOIN (
  SELECT
    "__skewless_row",
    COUNT(CASE WHEN "e"."__skewless_in_0" THEN 1 END) AS "v0",
    CAST(SUM(CASE WHEN "e"."__skewless_in_1" THEN "e"."amount" END) AS DOUBLE) AS "v1",
    CAST(MAX(
      CASE
        WHEN "e"."__skewless_in_2" AND "e"."event_ts" = "e"."__skewless_last_ts_2"
        THEN "e"."amount"
      END
    ) AS DOUBLE) AS "v2",
    COUNT(DISTINCT CASE WHEN "e"."__skewless_in_3" THEN "e"."merchant_id" END) AS "v3"
  FROM (
    SELECT
      "s"."__skewless_row" AS "__skewless_row",
      "e"."event_ts" AS "event_ts",
      "e"."amount" AS "amount",
      "e"."merchant_id" AS "merchant_id",
      DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "e"."event_ts") > (
        DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "s"."__skewless_ts") - 300000000
      ) - (
        (
          DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "s"."__skewless_ts") - 300000000
        ) % 300000000 + 300000000
      ) % 300000000 AS "__skewless_in_0",
      DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "e"."event_ts") > (
        DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "s"."__skewless_ts") - 604800000000
      ) - (
        (
          DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "s"."__skewless_ts") - 604800000000
        ) % 3600000000 + 3600000000
      ) % 3600000000 AS "__skewless_in_1",
      DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "e"."event_ts") > (
        DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "s"."__skewless_ts") - 3600000000
      ) - (
        (
          DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "s"."__skewless_ts") - 3600000000
        ) % 300000000 + 300000000
      ) % 300000000 AS "__skewless_in_2",
      DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "e"."event_ts") > (
        DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "s"."__skewless_ts") - 86400000000
      ) - (
        (
          DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "s"."__skewless_ts") - 86400000000
        ) % 3600000000 + 3600000000
      ) % 3600000000 AS "__skewless_in_3",
      MAX(
        CASE
          WHEN DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "e"."event_ts") > (
            DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "s"."__skewless_ts") - 3600000000
          ) - (
            (
              DATEDIFF(MICROSECOND, CAST('1970-01-01 00:00:00' AS TIMESTAMP), "s"."__skewless_ts") - 3600000000
            ) % 300000000 + 300000000
          ) % 300000000
          AND NOT "e"."amount" IS NULL
          THEN "e"."event_ts"
        END
      ) OVER (PARTITION BY "s"."__skewless_row") AS "__skewless_last_ts_2"
    FROM "__skewless_spine" AS s
    JOIN "features"."user_txn_windows" AS e
      ON "e"."user_id" = "s"."user_id"
      AND "e"."event_ts" <= "s"."__skewless_ts"
      AND "e"."event_ts" > "s"."__skewless_ts" - INTERVAL '169 HOUR'
  ) AS e
  GROUP BY
    "__skewless_row"
) AS f0
  ON "f0"."__skewless_row" = "spine"."__skewless_row"
ORDER BY
  "spine"."__skewless_row"
