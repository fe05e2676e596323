{#- Arithmetic that does not fail on the rows that matter least. -#}

{% macro safe_divide(numerator, denominator) -%}
({{ numerator }}) / nullif({{ denominator }}, 0)
{%- endmacro %}
