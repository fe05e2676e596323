{{ config(
    entity='user',
    timestamp='event_ts',
    ttl='30d',
    online=true,
    owner='risk-team',
    tags=['fraud', 'spend'],
) }}

select
    user_id,
    event_ts,
    {{ rolling('sum(amount)', 'user_id', 'event_ts', '7d') }} as user__amount_sum__7d,
    {{ rolling('sum(amount)', 'user_id', 'event_ts', '30d') }} as user__amount_sum__30d,
    {{ rolling('avg(amount)', 'user_id', 'event_ts', '30d') }} as user__amount_avg__30d,
    {{ rolling('max(amount)', 'user_id', 'event_ts', '30d') }} as user__amount_max__30d
from {{ ref('stg_transactions') }}
