-- One row per (user, film): the latest rating, whether it was seen, watchlisted or liked.
-- The recommenders train on seen films; the watchlist only steers serving.
--
-- Incremental: a nightly build recomputes only the users whose rows in ingest.reviews changed
-- since their rows here were built (`source_digest`: a sum of hashes of every row the user has
-- there, each with the film it resolves to today), deleting and re-inserting all of each such
-- user's rows; everyone else's rows are left as they are. A new day, a backfill of an older day,
-- a second collection on one day, a re-rating and a film resolved since all change the digest.
-- The weekly full refresh (`dbt build --full-refresh`, full_refresh_job) rebuilds every row, which
-- also drops the rows of users no longer in ingest.reviews.
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='user_key',
          on_schema_change='append_new_columns') }}

{%- set incremental = is_incremental() and 'source_digest' in (
    adapter.get_columns_in_relation(this) | map(attribute='name') | list) %}

{%- set digest_select %}
    select r.user_key,
           sum(hash(r.observation_id, r.scrape_date, r.source, r.kind, r.rating, r.liked, r.rewatch,
                    r.event_at, coalesce(r.tmdb_id, res.tmdb_id)) >> 20)::bigint as source_digest
    from {{ source('ingest', 'reviews') }} r
    left join {{ source('metadata', 'film_resolution') }} res on r.film_key = res.film_key
{%- endset %}

{%- set changed_sql %}
    select d.user_key
    from ({{ digest_select }} group by r.user_key) d
    left join (select user_key, any_value(source_digest) as built from {{ this }} group by 1) t
        using (user_key)
    where t.built is distinct from d.source_digest
{%- endset %}

{#- The users whose rows changed, as a list of constants (user_key_list says why) -#}
{%- set users_filter = 'user_key in ' ~ user_key_list(changed_sql) if incremental else '' %}

with observations as (
    select *
    from {{ ref('stg_reviews') }}
    where tmdb_id is not null
    {%- if users_filter %}
      and {{ users_filter }}
    {%- endif %}
),
digests as (
    {{ digest_select }}
    {%- if users_filter %}
    where r.{{ users_filter }}
    {%- endif %}
    group by r.user_key
),
pairs as (
select
    user_key,
    any_value(platform) as platform,
    any_value(username) as username,
    tmdb_id,
    arg_max(rating, event_at) filter (where rating is not null) as rating,
    bool_or(kind in ('rating', 'diary', 'watched', 'review', 'like')) as seen,
    bool_or(kind = 'watchlist') as on_watchlist,
    coalesce(bool_or(liked), false) as liked,
    count(*) filter (where kind = 'diary') as diary_entries,
    coalesce(bool_or(rewatch), false) as rewatched,
    min(event_at) filter (where kind <> 'watchlist') as first_at,
    coalesce(max(event_at) filter (where kind <> 'watchlist'), max(event_at)) as last_at,
    max(scrape_date) as collected_through
from observations
group by user_key, tmdb_id
)
select p.*, d.source_digest
from pairs p
left join digests d using (user_key)
