"""The HTTP face: the Flask-RESTful app (`factory.create_app`), its resources, error answers, request parsers,
per-request middleware, pages, the OpenAPI document and the Open Inference Protocol. The top layer beside
`training` and `batch`: it imports `kinds`, `serving` and `store`, and nothing imports it but the root commands.
"""
