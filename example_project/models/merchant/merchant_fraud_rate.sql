{{ config(
    entity='merchant',
    timestamp='event_ts',
    ttl='30d',
    online=true,
    owner='merchant-risk',
    tags=['fraud'],
) }}

-- The share of a merchant's payments in the last 30 days that later got a chargeback.
with flagged as (
    select
        t.merchant_id,
        t.event_ts,
        case when c.txn_id is null then 0 else 1 end as charged_back
    from {{ ref('stg_transactions') }} as t
    left join {{ ref('stg_chargebacks') }} as c
        on c.txn_id = t.txn_id
        and c.event_ts <= t.event_ts
)
select
    merchant_id,
    event_ts,
    {{ safe_divide(
        'sum(charged_back) ' ~ rolling_window('merchant_id', 'event_ts', '30d'),
        'count(*) ' ~ rolling_window('merchant_id', 'event_ts', '30d')
    ) }} as merchant__fraud_rate__30d
from flagged
