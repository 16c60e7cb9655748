{# A lower-case identifier fragment from any name: "Science Fiction" -> science_fiction #}
{% macro slug(expr) -%}
  trim(regexp_replace(lower(strip_accents({{ expr }})), '[^a-z0-9]+', '_', 'g'), '_')
{%- endmacro %}
