{#- The user keys `users_sql` selects, for `user_key in <this>`: looked up first and written as a
    list of constants, which DuckDB pushes through a window partitioned by user (stg_reviews) down
    to the scan; a filter by subquery deduplicates every row first (3.3 s against 0.02 s for one
    night at ML-32M tenth size). Past 20,000 keys the query text would outgrow the saving, so the
    subquery is kept. An empty selection is `(null)`, which matches nothing. -#}
{% macro user_key_list(users_sql) -%}
    {%- set users = run_query(users_sql).columns[0].values() | list if execute else [] -%}
    {%- if users | length > 20000 -%}
        {%- do return('(' ~ users_sql ~ ')') -%}
    {%- endif -%}
    {%- set quoted = [] -%}
    {%- for u in users -%}
        {%- do quoted.append("'" ~ (u | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {%- do return('(' ~ (quoted | join(', ') if quoted else 'null') ~ ')') -%}
{%- endmacro %}
