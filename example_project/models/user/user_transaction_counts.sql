{{ config(
    entity='user',
    timestamp='event_ts',
    ttl='30d',
    online=true,
    owner='risk-team',
    tags=['fraud', 'velocity'],
) }}

select
    user_id,
    event_ts,
    count(*) {{ rolling_window('user_id', 'event_ts', '1d') }} as user__txn_count__1d,
    count(*) {{ rolling_window('user_id', 'event_ts', '7d') }} as user__txn_count__7d,
    count(*) {{ rolling_window('user_id', 'event_ts', '30d') }} as user__txn_count__30d
from {{ ref('stg_transactions') }}
