{#- Project macros: shared definitions of what the risk team calls "large" or "night-time". -#}

{% macro is_large_amount(column) -%}
({{ column }} >= {{ var('large_amount') }})
{%- endmacro %}

{% macro replay(ts_column) -%}
{%- if var('replay') -%}
({{ ts_column }} + date_diff('day', cast('{{ var("data_end") }}' as date), current_date) * interval '1 day')
{%- else -%}
{{ ts_column }}
{%- endif -%}
{%- endmacro %}

{% macro is_night(ts_column) -%}
(extract(hour from {{ ts_column }}) < 6)
{%- endmacro %}
