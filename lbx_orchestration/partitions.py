import dagster as dg

from lbx_orchestration.constants import SCRAPE_DATES_START

#: the day an observation was collected; end_offset=1 keeps today's partition available
scrape_date_partitions = dg.DailyPartitionsDefinition(start_date=SCRAPE_DATES_START, end_offset=1)

#: Letterboxd users onboarded through the inbox (one partition per person, never date x user)
letterboxd_user_partitions = dg.DynamicPartitionsDefinition(name="letterboxd_users")
