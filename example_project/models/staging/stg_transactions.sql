{{ config(materialized='ephemeral', description='Transactions with re-sent duplicates removed: the first ingested copy wins.') }}

with deduplicated as (
    {{ deduplicate(source('shop', 'transactions'), 'txn_id', 'created_ts') }}
)
select
    txn_id,
    user_id,
    merchant_id,
    amount,
    channel,
    {{ replay('event_ts') }} as event_ts,
    {{ replay('created_ts') }} as created_ts,
    is_fraud
from deduplicated
