{#- A model's SQL names other relations by schema and table only, never by catalogue: DuckDB binds a
    view's names inside the catalogue that holds it, so the views keep working when the warehouse is
    copied under another file name, attached under another alias (lbx serve's snapshot: `src`), or
    is a DuckLake catalogue attached as `lbx`. -#}
{% macro ref() %}
  {% do return(builtins.ref(*varargs, **kwargs).include(database=False)) %}
{% endmacro %}

{% macro source(source_name, table_name) %}
  {% do return(builtins.source(source_name, table_name).include(database=False)) %}
{% endmacro %}
