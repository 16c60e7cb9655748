-- Every observation once (its latest collection), with the film's TMDb id.
-- An export is a full snapshot of a user's history, so only the newest export of each user counts.
with latest_export as (
    select user_key, max(scrape_date) as scrape_date
    from {{ source('ingest', 'reviews') }}
    where source = 'letterboxd_export'
    group by user_key
),
current_rows as (
    -- keys only: the window below then holds four narrow columns instead of every column (at
    -- ML-32M size DuckDB 1.5.5 could not spill the wide window and needed 8 GB; this way 4 GB)
    select r.rowid as row_id, r.user_key, r.observation_id, r.scrape_date
    from {{ source('ingest', 'reviews') }} r
    left join latest_export e on r.user_key = e.user_key
    where r.source <> 'letterboxd_export' or r.scrape_date = e.scrape_date
),
newest as (
    -- an observation id belongs to one user, so partitioning by user too changes nothing but lets
    -- a query for one member (`where user_key = ?`) skip everyone else's rows: at ML-32M size
    -- that is 0.1 s instead of seconds for each look at a member's films
    select row_id, user_key
    from current_rows
    qualify row_number() over (partition by user_key, observation_id order by scrape_date desc) = 1
),
deduplicated as (
    -- an inner join on the user too, so a filter on user_key reaches the window (a semi join
    -- does not carry it there)
    select n.user_key, r.* exclude (user_key)
    from newest n
    join {{ source('ingest', 'reviews') }} r on r.rowid = n.row_id and r.user_key = n.user_key
)
select
    d.observation_id, d.scrape_date, d.source, d.platform, d.username, d.user_key, d.kind,
    d.film_key, d.film_title, d.film_year,
    coalesce(d.tmdb_id, res.tmdb_id) as tmdb_id,
    d.rating, d.rewatch, d.liked, d.event_date, d.event_at
from deduplicated d
left join {{ source('metadata', 'film_resolution') }} res on d.film_key = res.film_key
