"""ocr: read scanned pages (DESIGN.md, "Intake"): rasterize, orient, deskew, OCR.

Pages of PDF, TIFF, JPEG and PNG uploads are read one at a time, in memory:
:func:`page_count`, then :func:`read_page` per page (a PDF page's own text layer when it has
one; otherwise cleaning, orientation, deskew and an OCR engine of :data:`ENGINES`), giving a
:class:`PageResult`. :func:`page_image` gives the page as it was read, and
:func:`searchable_pdf` makes the access copy from those images and results.
:func:`measure_page` and :func:`assess` measure how a page was digitized (resolution, size,
colour, ink) and judge it. Processes that read many pages call :func:`warm_engine` once.
``ocr`` knows nothing of records, the vault or settings; it imports nothing of dangan but
``dangan.errors``, and never logs page text.
"""

from ocr.engines import ENGINES
from ocr.pdf import searchable_pdf
from ocr.pipeline import page_count, page_image, read_page, warm_engine
from ocr.quality import ColourMode, PageScan, QualityRules, assess, measure_page
from ocr.result import PageResult, Word

__all__ = [
    "ENGINES",
    "ColourMode",
    "PageResult",
    "PageScan",
    "QualityRules",
    "Word",
    "assess",
    "measure_page",
    "page_count",
    "page_image",
    "read_page",
    "searchable_pdf",
    "warm_engine",
]
