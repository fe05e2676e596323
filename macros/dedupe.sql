{#- Keep one row per key: the newest by `order_by`. Duplicate and re-sent events are common in raw data. -#}

{% macro deduplicate(relation, partition_by, order_by) -%}
{{ adapter.dispatch('deduplicate')(relation, partition_by, order_by) }}
{%- endmacro %}

{% macro default__deduplicate(relation, partition_by, order_by) -%}
select * from {{ relation }}
qualify row_number() over (partition by {{ partition_by }} order by {{ order_by }}) = 1
{%- endmacro %}

{% macro postgres__deduplicate(relation, partition_by, order_by) -%}
select distinct on ({{ partition_by }}) * from {{ relation }} order by {{ partition_by }}, {{ order_by }}
{%- endmacro %}
