"""Batch scoring: a corpus read, scored and written in blocks (`blocks`), in this process or on a Dask cluster
(`cluster`), run by `predict.py`. A top layer beside `web` and `training`: it imports `kinds` and `store`.
"""
