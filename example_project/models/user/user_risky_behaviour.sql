{{ config(
    entity='user',
    timestamp='event_ts',
    ttl='30d',
    online=true,
    owner='risk-team',
    tags=['fraud'],
) }}

-- Large and night-time payments: definitions shared through the project's risk macros.
select
    user_id,
    event_ts,
    sum(case when {{ is_large_amount('amount') }} then 1 else 0 end)
        {{ rolling_window('user_id', 'event_ts', '30d') }} as user__large_txn_count__30d,
    sum(case when {{ is_night('event_ts') }} then 1 else 0 end)
        {{ rolling_window('user_id', 'event_ts', '7d') }} as user__night_txn_count__7d
from {{ ref('stg_transactions') }}
