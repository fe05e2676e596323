{#- A filter for incremental models: only rows past what the table already holds, minus a lookback for late data. -#}

{% macro incremental_since(column, lookback=none) -%}
{%- if is_incremental() -%}
where {{ column }} > (select max({{ column }}) from {{ this }}){% if lookback %} - {{ interval_literal(lookback) }}{% endif %}
{%- endif -%}
{%- endmacro %}
