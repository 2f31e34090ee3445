"""The intake pipeline as durable jobs: rasterize → OCR each page → assemble → index.

(Being built; the job kinds below are the contract intake queues against.)
"""

from __future__ import annotations

__all__ = ["OCR_RASTERIZE"]

# Queued by intake for every new record, keyed ``ocr:{archive_code}``, payload
# ``{"archive_code": ...}``.
OCR_RASTERIZE = "ocr.rasterize"
