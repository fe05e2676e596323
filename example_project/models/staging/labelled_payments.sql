{{ config(materialized='view', owner='risk-team', tags=['labels'],
          description='Deduplicated payments with their fraud label: the spine of the fraud training set.') }}

select txn_id, user_id, merchant_id, amount, channel, event_ts, is_fraud
from {{ ref('stg_transactions') }}
