"""`incident serve`: the webhook app, its durable job queue and the worker pool."""
