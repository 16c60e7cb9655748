import dagster as dg

#: the days lbx collected observations (the bundled sample's, each import's, each nightly run's):
#: a partition exists only for a day that has data, so the UI never shows a wall of missing days.
#: Added by the demo, the nightly schedule, the inbox sensor and imports.
scrape_date_partitions = dg.DynamicPartitionsDefinition(name="scrape_dates")


def add_scrape_date(instance: dg.DagsterInstance, day: str) -> None:
    if not instance.has_dynamic_partition(scrape_date_partitions.name, day):
        instance.add_dynamic_partitions(scrape_date_partitions.name, [day])
