"""api: the HTTP API, the web pages and the `dangan` command line, over api.services."""

__all__: list[str] = []
