{{ config(materialized='view', description='Chargebacks joined to their transaction, one row per transaction.') }}

select
    c.txn_id,
    c.user_id,
    c.merchant_id,
    {{ replay('c.event_ts') }} as event_ts,
    c.amount
from {{ source('shop', 'chargebacks') }} as c
