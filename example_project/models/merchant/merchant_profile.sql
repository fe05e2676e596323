{{ config(
    entity='merchant',
    timestamp='onboarded_ts',
    online=true,
    owner='merchant-risk',
    tags=['profile'],
) }}

select
    merchant_id,
    onboarded_ts,
    category as merchant__category
from {{ source('shop', 'merchants') }}
