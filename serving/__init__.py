"""The serving machinery, below the HTTP face: settings, the named API errors, answer ids, the prediction log
and what records to it, Prometheus metrics and drift signals, the release follower, the process lifecycle
under gunicorn, and the log formats. No Flask routes here; it imports only `store` and `util`.
"""
