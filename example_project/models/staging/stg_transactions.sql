{{ config(materialized='ephemeral', description='Transactions with re-sent duplicates removed: the first ingested copy wins.') }}

{{ deduplicate(source('shop', 'transactions'), 'txn_id', 'created_ts') }}
