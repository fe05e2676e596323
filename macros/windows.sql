{#- Rolling windows over event time: the backbone of count/sum/avg features. -#}

{% macro rolling_window(partition_by, order_by, period) -%}
{{ adapter.dispatch('rolling_window')(partition_by, order_by, period) }}
{%- endmacro %}

{% macro default__rolling_window(partition_by, order_by, period) -%}
over (partition by {{ partition_by }} order by {{ order_by }} range between {{ interval_literal(period) }} preceding and current row)
{%- endmacro %}

{% macro rolling(aggregate, partition_by, order_by, period) -%}
{{ aggregate }} {{ rolling_window(partition_by, order_by, period) }}
{%- endmacro %}
