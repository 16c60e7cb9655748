-- One row per (user, film): the latest rating, whether it was seen, watchlisted or liked.
-- The recommenders train on seen films; the watchlist only steers serving.
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
    coalesce(max(event_at) filter (where kind <> 'watchlist'), max(event_at)) as last_at
from {{ ref('stg_reviews') }}
where tmdb_id is not null
group by user_key, tmdb_id
