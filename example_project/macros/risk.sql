{#- Project macros: shared definitions of what the risk team calls "large" or "night-time". -#}

{% macro is_large_amount(column) -%}
({{ column }} >= {{ var('large_amount') }})
{%- endmacro %}

{% macro is_night(ts_column) -%}
(extract(hour from {{ ts_column }}) < 6)
{%- endmacro %}
