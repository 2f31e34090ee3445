"""Bulk postings: the text fields of a rebuild, as numpy arrays beside the Whoosh index.

Whoosh writes a posting for about 10 µs in pure Python, and a record's pages give ~240
distinct bigrams: a rebuild of 100,000 records spent most of its time there. A rebuild knows
every record up front, so it counts each record's bigrams once, and numpy sorts them into
term-major postings in one pass; search reads a term's postings as two array slices. Records
indexed later (upserts) carry their text in Whoosh's fields of the same names instead, and
the search merges both (see :mod:`indexer.engine`). A term is stored as ``field:term``
(fields are :data:`indexer.schema.TEXT_FIELDS`; terms never hold a colon).

Files in a generation directory (written before the generation is swapped in; never
changed after)::

    bulk-terms.txt    the ``field:term`` keys, one a line; line i is term id i
    bulk-offsets.npy  int64[T+1]: term i's postings are rows offsets[i]:offsets[i+1]
    bulk-docs.npy     uint32[P]:  per posting, the bulk document number (ascending per term)
    bulk-tfs.npy      uint16[P]:  per posting, how often the term occurs in its field
    bulk-rids.npy     int64[D]:   per bulk document, its record id
    bulk-lengths.npy  uint32[D]:  per bulk document, how many terms its body has

Never logs: the terms are record text.
"""

from __future__ import annotations

from array import array
from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt

from indexer.analyzer import split_terms

__all__ = ["BulkBuilder", "BulkPostings"]

_TERMS = "bulk-terms.txt"
_ARRAYS = ("offsets", "docs", "tfs", "rids", "lengths")
_MAX_TF = 65535


def _path(directory: Path, name: str) -> Path:
    return directory / f"bulk-{name}.npy"


class BulkBuilder:
    """Collects the body postings of a rebuild in memory, then writes them in one go.

    Memory: about 10 bytes per posting (~240 MB for 100,000 records of 600 characters).
    """

    def __init__(self) -> None:
        self._vocab: dict[str, int] = {}
        self._terms = array("I")
        self._docs = array("I")
        self._tfs = array("I")
        self._rids = array("q")
        self._lengths = array("I")

    def add(self, record_id: int, fields: dict[str, str]) -> None:
        """Add one record's text fields; records are numbered in the order they come.

        :param record_id: the record's id (unique in a rebuild; the caller checks).
        :param fields: text per field name; ``body`` gives the length BM25 normalises by.
        """
        doc = len(self._rids)
        self._rids.append(record_id)
        vocab = self._vocab
        setdefault = vocab.setdefault
        body_length = 0
        for field, text in fields.items():
            counts = Counter(split_terms(text))
            prefix = field + ":"
            self._terms.extend([setdefault(prefix + term, len(vocab)) for term in counts])
            tfs = counts.values()
            self._tfs.extend(tfs)
            self._docs.extend([doc] * len(counts))
            if field == "body":
                body_length = sum(tfs)
        self._lengths.append(body_length)

    def __len__(self) -> int:
        return len(self._rids)

    def write(self, directory: Path) -> None:
        """Write the bulk files into ``directory`` (a generation not yet swapped in).

        :param directory: the new generation's directory.
        :raises OSError: the disk failed.
        """
        terms = (
            np.frombuffer(self._terms, dtype=np.uint32) if self._terms else np.empty(0, np.uint32)
        )
        # Stable, so each term's postings stay in document order.
        order = np.argsort(terms, kind="stable")
        offsets = np.zeros(len(self._vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(terms, minlength=len(self._vocab)), out=offsets[1:])
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "offsets": offsets,
            "docs": np.asarray(self._docs, dtype=np.uint32)[order],
            "tfs": np.minimum(np.asarray(self._tfs, dtype=np.uint32), _MAX_TF).astype(np.uint16)[
                order
            ],
            "rids": np.asarray(self._rids, dtype=np.int64),
            "lengths": np.asarray(self._lengths, dtype=np.uint32),
        }
        for name, values in arrays.items():
            np.save(_path(directory, name), values)
        (directory / _TERMS).write_text("\n".join(self._vocab), encoding="utf-8")


class BulkPostings:
    """The bulk postings of one generation, read-only, memory-mapped."""

    def __init__(self, directory: Path) -> None:
        """Use :meth:`load`."""
        text = (directory / _TERMS).read_text(encoding="utf-8")
        terms = text.split("\n") if text else []
        self.vocab: dict[str, int] = {term: i for i, term in enumerate(terms)}
        loaded = {name: np.load(_path(directory, name), mmap_mode="r") for name in _ARRAYS}
        self.offsets: npt.NDArray[np.int64] = loaded["offsets"]
        self.docs: npt.NDArray[np.uint32] = loaded["docs"]
        self.tfs: npt.NDArray[np.uint16] = loaded["tfs"]
        self.rids: npt.NDArray[np.int64] = np.asarray(loaded["rids"])
        self.lengths: npt.NDArray[np.uint32] = np.asarray(loaded["lengths"])

    @classmethod
    def load(cls, directory: Path) -> BulkPostings | None:
        """The bulk postings in ``directory``, or ``None`` if it has none (never rebuilt).

        :raises OSError: the files are there but unreadable.
        """
        if not (directory / _TERMS).exists():
            return None
        return cls(directory)

    def postings(
        self, field: str, term: str
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint16]] | None:
        """Bulk document numbers and term frequencies of ``term`` in ``field``, or ``None``."""
        tid = self.vocab.get(f"{field}:{term}")
        if tid is None:
            return None
        start, end = int(self.offsets[tid]), int(self.offsets[tid + 1])
        return self.docs[start:end], self.tfs[start:end]

    def has(self, field: str, term: str) -> bool:
        """Whether ``term`` is in ``field`` of any bulk document."""
        return f"{field}:{term}" in self.vocab

    def with_prefix(self, field: str, prefix: str) -> list[str]:
        """Every term of ``field`` that starts with ``prefix`` (a scan of the vocabulary)."""
        key = f"{field}:{prefix}"
        cut = len(field) + 1
        return [term[cut:] for term in self.vocab if term.startswith(key)]
