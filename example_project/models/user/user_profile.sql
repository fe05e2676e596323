{{ config(
    entity='user',
    timestamp='updated_ts',
    materialized='feature_table',
    online=true,
    owner='growth-team',
    tags=['profile'],
) }}

select
    user_id,
    updated_ts,
    country as user__country,
    signup_ts as user__signup_ts
from {{ source('shop', 'users') }}
