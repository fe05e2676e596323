{{ config(
    entity='merchant',
    timestamp='event_ts',
    materialized='incremental',
    lookback='2d',
    ttl='7d',
    online=true,
    owner='merchant-risk',
    tags=['fraud', 'velocity'],
) }}

-- Incremental: each run appends the rows past the table's newest event_ts (minus a 2-day lookback for
-- late events); rolling windows are computed over the full history, so values stay exact.
select
    merchant_id,
    event_ts,
    count(*) {{ rolling_window('merchant_id', 'event_ts', '7d') }} as merchant__txn_count__7d,
    sum(amount) {{ rolling_window('merchant_id', 'event_ts', '7d') }} as merchant__amount_sum__7d
from {{ ref('stg_transactions') }}
