"""The job system: rows in the database, ids on a Celery/Redis queue, workers that claim them."""
