{{ config(
    entity='user',
    timestamp='event_ts',
    online=true,
    stream='transactions',
    owner='risk-team',
    tags=['fraud', 'streaming'],
    description='Payment windows that slide with the clock, kept current by `skewless stream` from the '
                'transactions stream: exact at the instant asked, offline and online.',
) }}

{{ skewless.window_agg(source('shop', 'transactions'),
     aggs=[('*', 'count', 'payments'), ('amount', 'sum', 'spend'), ('amount', 'max', 'max_amount'),
           ('amount', 'avg', 'avg_amount'), ('amount', 'last', 'last_amount'),
           ('merchant_id', 'count_distinct', 'merchants')],
     windows=['5m', '1h', '1d', '7d'], hop='5m', allowed_lateness='10m') }}
