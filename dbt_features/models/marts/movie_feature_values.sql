-- The feature families of the original design, long format (tmdb_id, family, feature, value).
{% set top_directors = var('top_directors') %}
{% set top_cast = var('top_cast') %}
{% set top_languages = var('top_languages') %}
with movies as (select * from {{ ref('stg_movies') }}),
runtime_bins as (
    select tmdb_id, ntile(4) over (order by runtime) as q from movies where runtime is not null
),
popularity_bins as (
    select tmdb_id, ntile(4) over (order by popularity) as q from movies where popularity is not null
),
directors as (select tmdb_id, unnest(directors) as name from movies where directors is not null),
top_directors as (
    select name from directors group by name order by count(*) desc, name limit {{ top_directors }}
),
cast_members as (select tmdb_id, unnest(cast_top) as name from movies where cast_top is not null),
top_cast as (
    select name from cast_members group by name order by count(*) desc, name limit {{ top_cast }}
),
top_languages as (
    select original_language as lang from movies where original_language is not null
    group by 1 order by count(*) desc, 1 limit {{ top_languages }}
),
genres as (select tmdb_id, unnest(genres) as name from movies where genres is not null),
features as (
    select tmdb_id, 'decade' as family, 'decade_' || decade as feature from movies
    union all
    select m.tmdb_id, 'runtime', 'runtime_' || coalesce('q' || r.q::varchar, 'unknown')
    from movies m left join runtime_bins r using (tmdb_id)
    union all
    select tmdb_id, 'genre', 'genre_' || {{ slug('name') }} from genres
    union all
    select distinct d.tmdb_id, 'director',
        case when t.name is null then 'director_other' else 'director_' || {{ slug('d.name') }} end
    from directors d left join top_directors t on d.name = t.name
    union all
    select distinct c.tmdb_id, 'cast',
        case when t.name is null then 'cast_other' else 'cast_' || {{ slug('c.name') }} end
    from cast_members c left join top_cast t on c.name = t.name
    union all
    select m.tmdb_id, 'language',
        case
            when m.original_language is null then 'lang_unknown'
            when t.lang is null then 'lang_other'
            else 'lang_' || {{ slug('m.original_language') }}
        end
    from movies m left join top_languages t on m.original_language = t.lang
    union all
    -- log buckets: floor(log10(1 + amount)), clipped to 4 (< 100k) .. 8 (>= 100M)
    select tmdb_id, 'budget',
        case when budget is null then 'budget_unknown'
             else 'budget_log' || greatest(4, least(8, floor(log10(1 + budget))::integer))::varchar end
    from movies
    union all
    select tmdb_id, 'revenue',
        case when revenue is null then 'revenue_unknown'
             else 'revenue_log' || greatest(4, least(8, floor(log10(1 + revenue))::integer))::varchar end
    from movies
    union all
    select m.tmdb_id, 'popularity',
        'pop_tier_' || case p.q when 1 then 'low' when 2 then 'mid' when 3 then 'high' when 4 then 'top'
                            else 'unknown' end
    from movies m left join popularity_bins p using (tmdb_id)
)
select distinct tmdb_id, family, feature, 1.0::double as value
from features
where feature is not null
