select
    tmdb_id, media_type, title, original_title, year, runtime, budget, revenue,
    popularity, vote_average, vote_count, original_language, genres, directors, cast_top, keywords,
    -- the same label as decade() in lbx_orchestration/core/recsys/recommend.py
    case
        when year is null then 'unknown'
        when year < 1950 then 'pre_1950'
        else cast(floor(year / 10) * 10 as integer)::varchar || 's'
    end as decade
from {{ source('metadata', 'tmdb_movies') }}
