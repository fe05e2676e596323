{{ config(
    entity='user',
    timestamp='event_ts',
    ttl='90d',
    online=true,
    owner='risk-team',
    tags=['fraud', 'labels-derived'],
) }}

select
    user_id,
    event_ts,
    count(*) {{ rolling_window('user_id', 'event_ts', '90d') }} as user__chargeback_count__90d,
    sum(amount) {{ rolling_window('user_id', 'event_ts', '90d') }} as user__chargeback_amount__90d
from {{ ref('stg_chargebacks') }}
