"""The service functions that combine dangan's parts; HTTP routes, pages and the CLI call these."""

from api.services.runtime import Runtime
from api.services.setup import InitReport, initialize

__all__ = ["InitReport", "Runtime", "initialize"]
