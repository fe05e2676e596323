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
    CAST(SUM(CASE WHEN "e"."__skewless_in_0" THEN "e"."n" END) AS BIGINT) AS "v0",
    CAST(SUM(CASE WHEN "e"."__skewless_in_1" THEN "e"."sum:amount" END) AS DOUBLE PRECISION) AS "v1",
    CAST(MAX(
      CASE
        WHEN "e"."__skewless_in_2" AND "e"."lts:amount" = "e"."__skewless_last_ts_2"
        THEN "e"."last:amount"
      END
    ) AS DOUBLE PRECISION) AS "v2",
    COUNT(DISTINCT CASE WHEN "e"."__skewless_in_3" THEN "e"."dv:merchant_id" END) AS "v3"
  FROM (
    SELECT
      *,
      "p"."__skewless_low" > (
        "p"."__skewless_at_us" - 300000000
      ) - (
        (
          "p"."__skewless_at_us" - 300000000
        ) % 300000000 + 300000000
      ) % 300000000 AS "__skewless_in_0",
      "p"."__skewless_low" > (
        "p"."__skewless_at_us" - 604800000000
      ) - (
        (
          "p"."__skewless_at_us" - 604800000000
        ) % 3600000000 + 3600000000
      ) % 3600000000 AS "__skewless_in_1",
      "p"."__skewless_low" > (
        "p"."__skewless_at_us" - 3600000000
      ) - (
        (
          "p"."__skewless_at_us" - 3600000000
        ) % 300000000 + 300000000
      ) % 300000000 AS "__skewless_in_2",
      "p"."__skewless_low" > (
        "p"."__skewless_at_us" - 86400000000
      ) - (
        (
          "p"."__skewless_at_us" - 86400000000
        ) % 3600000000 + 3600000000
      ) % 3600000000 AS "__skewless_in_3",
      MAX(
        CASE
          WHEN "p"."__skewless_low" > (
            "p"."__skewless_at_us" - 3600000000
          ) - (
            (
              "p"."__skewless_at_us" - 3600000000
            ) % 300000000 + 300000000
          ) % 300000000
          AND "p"."n:amount" > 0
          THEN "p"."lts:amount"
        END
      ) OVER (PARTITION BY "p"."__skewless_row") AS "__skewless_last_ts_2"
    FROM (
      SELECT
        "s"."__skewless_row" AS "__skewless_row",
        CAST(EXTRACT(epoch FROM CAST("s"."__skewless_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT) AS "__skewless_at_us",
        "t"."__skewless_tile" - 300000000 + 1 AS "__skewless_low",
        "t"."n",
        "t"."n:amount",
        "t"."sum:amount",
        "t"."min:amount",
        "t"."max:amount",
        "t"."lts:amount",
        "t"."last:amount",
        CAST(NULL AS BIGINT) AS "dv:merchant_id"
      FROM "__skewless_spine" AS s
      JOIN (
        SELECT
          "user_id",
          "__skewless_tile",
          CAST(COUNT(*) AS BIGINT) AS "n",
          CAST(COUNT("amount") AS BIGINT) AS "n:amount",
          CAST(SUM("amount") AS DOUBLE PRECISION) AS "sum:amount",
          CAST(MIN("amount") AS DOUBLE PRECISION) AS "min:amount",
          CAST(MAX("amount") AS DOUBLE PRECISION) AS "max:amount",
          CAST(MAX("__skewless_newest_amount") AS BIGINT) AS "lts:amount",
          CAST(MAX(CASE WHEN "__skewless_us" = "__skewless_newest_amount" THEN "amount" END) AS DOUBLE PRECISION) AS "last:amount"
        FROM (
          SELECT
            *,
            MAX(CASE WHEN NOT "amount" IS NULL THEN "__skewless_us" END) OVER (PARTITION BY "user_id", "__skewless_tile") AS "__skewless_newest_amount"
          FROM (
            SELECT
              "user_id",
              CAST(EXTRACT(epoch FROM CAST("event_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT) AS "__skewless_us",
              (
                (
                  CAST(EXTRACT(epoch FROM CAST("event_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT)
                ) + 299999999
              ) - (
                (
                  (
                    CAST(EXTRACT(epoch FROM CAST("event_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT)
                  ) + 299999999
                ) % 300000000 + 300000000
              ) % 300000000 AS "__skewless_tile",
              "amount",
              "merchant_id"
            FROM "features"."user_txn_windows"
          ) AS events
        ) AS ranked
        GROUP BY
          "user_id",
          "__skewless_tile"
      ) AS t
        ON "t"."user_id" = "s"."user_id"
        AND "t"."__skewless_tile" <= (
          CAST(EXTRACT(epoch FROM CAST("s"."__skewless_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT)
        ) - (
          (
            CAST(EXTRACT(epoch FROM CAST("s"."__skewless_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT)
          ) % 300000000 + 300000000
        ) % 300000000
        AND "t"."__skewless_tile" > CAST(EXTRACT(epoch FROM CAST("s"."__skewless_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT) - 608400000000
      UNION ALL
      SELECT
        "s"."__skewless_row" AS "__skewless_row",
        CAST(EXTRACT(epoch FROM CAST("s"."__skewless_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT) AS "__skewless_at_us",
        "t"."__skewless_tile" - 300000000 + 1 AS "__skewless_low",
        CAST(NULL AS BIGINT) AS "n",
        CAST(NULL AS BIGINT) AS "n:amount",
        CAST(NULL AS DOUBLE PRECISION) AS "sum:amount",
        CAST(NULL AS DOUBLE PRECISION) AS "min:amount",
        CAST(NULL AS DOUBLE PRECISION) AS "max:amount",
        CAST(NULL AS BIGINT) AS "lts:amount",
        CAST(NULL AS DOUBLE PRECISION) AS "last:amount",
        "t"."merchant_id" AS "dv:merchant_id"
      FROM "__skewless_spine" AS s
      JOIN (
        SELECT DISTINCT
          "user_id",
          "__skewless_tile",
          "merchant_id"
        FROM (
          SELECT
            "user_id",
            CAST(EXTRACT(epoch FROM CAST("event_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT) AS "__skewless_us",
            (
              (
                CAST(EXTRACT(epoch FROM CAST("event_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT)
              ) + 299999999
            ) - (
              (
                (
                  CAST(EXTRACT(epoch FROM CAST("event_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT)
                ) + 299999999
              ) % 300000000 + 300000000
            ) % 300000000 AS "__skewless_tile",
            "amount",
            "merchant_id"
          FROM "features"."user_txn_windows"
        ) AS events
        WHERE
          NOT "merchant_id" IS NULL
      ) AS t
        ON "t"."user_id" = "s"."user_id"
        AND "t"."__skewless_tile" <= (
          CAST(EXTRACT(epoch FROM CAST("s"."__skewless_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT)
        ) - (
          (
            CAST(EXTRACT(epoch FROM CAST("s"."__skewless_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT)
          ) % 300000000 + 300000000
        ) % 300000000
        AND "t"."__skewless_tile" > CAST(EXTRACT(epoch FROM CAST("s"."__skewless_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT) - 608400000000
      UNION ALL
      SELECT
        "s"."__skewless_row" AS "__skewless_row",
        CAST(EXTRACT(epoch FROM CAST("s"."__skewless_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT) AS "__skewless_at_us",
        "e"."__skewless_us" AS "__skewless_low",
        CAST(1 AS BIGINT) AS "n",
        CAST(CASE WHEN NOT "e"."amount" IS NULL THEN 1 ELSE 0 END AS BIGINT) AS "n:amount",
        CAST("e"."amount" AS DOUBLE PRECISION) AS "sum:amount",
        CAST("e"."amount" AS DOUBLE PRECISION) AS "min:amount",
        CAST("e"."amount" AS DOUBLE PRECISION) AS "max:amount",
        CAST(CASE WHEN NOT "e"."amount" IS NULL THEN "e"."__skewless_us" END AS BIGINT) AS "lts:amount",
        CAST("e"."amount" AS DOUBLE PRECISION) AS "last:amount",
        CAST("e"."merchant_id" AS BIGINT) AS "dv:merchant_id"
      FROM "__skewless_spine" AS s
      JOIN (
        SELECT
          "user_id",
          "event_ts",
          CAST(EXTRACT(epoch FROM CAST("event_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT) AS "__skewless_us",
          "amount",
          "merchant_id"
        FROM "features"."user_txn_windows"
      ) AS e
        ON "e"."user_id" = "s"."user_id"
        AND "e"."__skewless_us" > (
          CAST(EXTRACT(epoch FROM CAST("s"."__skewless_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT)
        ) - (
          (
            CAST(EXTRACT(epoch FROM CAST("s"."__skewless_ts" AS TIMESTAMP) - CAST(CAST('1970-01-01 00:00:00' AS TIMESTAMP) AS TIMESTAMP)) * 1000000 AS BIGINT)
          ) % 300000000 + 300000000
        ) % 300000000
        AND "e"."event_ts" <= "s"."__skewless_ts"
    ) AS p
  ) AS e
  GROUP BY
    "__skewless_row"
) AS f0
  ON "f0"."__skewless_row" = "spine"."__skewless_row"
ORDER BY
  "spine"."__skewless_row"
