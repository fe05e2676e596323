{{ config(
    kind='on_demand',
    request_fields={'amount': 'double', 'channel': 'varchar', 'event_ts': 'timestamp'},
    inputs=['user__amount_avg__30d', 'user__amount_max__30d', 'user__txn_count__1d', 'user__signup_ts',
            'merchant__category'],
    owner='risk-team',
    tags=['fraud'],
) }}

-- Computed per payment: online from the request and the stored features, offline in the training-set query.
select
    round(amount / nullif(user__amount_avg__30d, 0), 4) as payment__amount_to_avg__30d,
    amount > coalesce(user__amount_max__30d, 0) as payment__exceeds_max__30d,
    coalesce(user__txn_count__1d, 0) // 5 as payment__burst_level__1d,
    date_diff('day', user__signup_ts, event_ts) as payment__account_age_days,
    case
        when channel = 'web' and hour(event_ts) < 6 then 'night_web'
        when channel = 'pos' then 'in_person'
        else lower(channel) || '_' || coalesce(merchant__category, 'unknown')
    end as payment__context
