-- Wide multi-hot matrix: one row per film, one 0/1 column per feature.
with catalog as (select tmdb_id from {{ ref('stg_movies') }}),
values_ as (
    select c.tmdb_id, coalesce(v.feature, 'missing_metadata') as feature, coalesce(v.value, 1.0) as value
    from catalog c left join {{ ref('movie_feature_values') }} v using (tmdb_id)
)
pivot values_ on feature using coalesce(max(value), 0.0) group by tmdb_id order by tmdb_id
