{#- dbt's hook for a test's `where` config. `__newest_collection__` in it stands for the newest
    scrape date in ingest.reviews: an incremental build (the nightly) tests the rows it collected
    that night (unique observation ids over 32M rows cost ~35 s a night at ML-32M size), a
    `--full-refresh` build (the weekly retrain, make demo) tests every row. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where and '__newest_collection__' in where -%}
        {%- if flags.FULL_REFRESH -%}
            {%- set where = none -%}
        {%- else -%}
            {%- set where = where | replace('__newest_collection__', '(select max(scrape_date) from ingest.reviews)') -%}
        {%- endif -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
