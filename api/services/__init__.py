"""The service functions that combine dangan's parts; HTTP routes, pages and the CLI call these.

Importing this package registers the job handlers (``api.services.jobs`` for the vault,
``api.services.pipeline`` for OCR and indexing), so every
worker process, which imports it to build its runtime, can run them.
"""

from api.services import backups as backups
from api.services import jobs as jobs
from api.services import pipeline as pipeline
from api.services import retention as retention
from api.services import schedule as schedule  # the fixity cycle, replication, the scheduler
from api.services.intake import ingest
from api.services.runtime import Runtime
from api.services.setup import InitReport, initialize

__all__ = ["InitReport", "Runtime", "ingest", "initialize"]
