-- A singular test: the rows it returns are failures. A chargeback is filed after the payment it reverses.
select c.txn_id, c.event_ts as charged_back_at, t.event_ts as paid_at
from {{ ref('stg_chargebacks') }} as c
join {{ ref('stg_transactions') }} as t on t.txn_id = c.txn_id
where c.event_ts < t.event_ts
