{#- dbt's hook for a test's `where` config. Two placeholders narrow an incremental build's (the
    nightly's) tests to what that night collected; a `--full-refresh` build (the weekly retrain,
    make demo, an empty warehouse's first build) tests every row:
    - `__newest_collection__`: the newest scrape date in ingest.reviews (for tables: unique
      observation ids over 32M rows cost ~35 s a night at ML-32M size);
    - `__newest_users__`: the users collected on that date, written as a list of constants (for
      stg_reviews, a view whose window is partitioned by user: DuckDB pushes a list through it,
      not a date filter nor a subquery, which cost 7 and 12 s for its two tests at ML-32M size). -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where and ('__newest_collection__' in where or '__newest_users__' in where) -%}
        {%- if flags.FULL_REFRESH -%}
            {%- set where = none -%}
        {%- else -%}
            {%- set newest = '(select max(scrape_date) from ingest.reviews)' -%}
            {%- set where = where | replace('__newest_collection__', newest) -%}
            {%- if '__newest_users__' in where -%}
                {%- set where = where | replace('__newest_users__', newest_users(newest)) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{% macro newest_users(newest) -%}
    {%- do return(user_key_list('select distinct user_key from ingest.reviews where scrape_date = ' ~ newest)) -%}
{%- endmacro %}
