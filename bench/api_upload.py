"""One large upload through the API, and the server's memory while it is received (issue 5).

Starts ``dangan serve`` on the embedded default in a fresh data directory (its job workers
off: the bench measures the upload, not the OCR that would follow), signs in, and uploads one
PDF of about 1 GiB over ``POST /api/v1/records``: a one-page PDF whose page draws one image of
random (incompressible) RGB pixels, made on the fly while it is sent, so neither side ever has
it whole in memory. Meanwhile the server's resident memory (its process and any children) is
read from ``/proc`` every 50 ms.

Prints the file size, the seconds from the first byte sent to the answer, MiB/s, and the
server's peak RSS against the target (under 150 MiB). The last line is one JSON object of the
figures. Run from the repository root: ``python bench/api_upload.py`` (``--mib 64`` for a
small run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import MIB, RssSampler, Server

TARGET_MIB = 150
BOUNDARY = "dangan-bench-upload"
BLOCK = os.urandom(MIB)


class PdfWithOneImage:
    """A valid one-page PDF (A4) of about ``size`` bytes: the page draws one uncompressed
    8-bit RGB image XObject whose pixels are random bytes, produced piece by piece."""

    def __init__(self, size: int) -> None:
        width = 4096
        height = max(1, (size - 2048) // (width * 3))
        self.pixels = width * height * 3
        content = b"q 595 0 0 842 0 0 cm /Im0 Do Q\n"
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /XObject << /Im0 5 0 R >> >> /Contents 4 0 R >>",
            b"<< /Length %d >>\nstream\n%b\nendstream" % (len(content), content),
        ]
        self.head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
        offsets = []
        for number, body in enumerate(objects, start=1):
            offsets.append(len(self.head))
            self.head += b"%d 0 obj\n%b\nendobj\n" % (number, body)
        offsets.append(len(self.head))
        self.head += (
            b"5 0 obj\n<< /Type /XObject /Subtype /Image /Width %d /Height %d "
            b"/ColorSpace /DeviceRGB /BitsPerComponent 8 /Length %d >>\nstream\n"
            % (width, height, self.pixels)
        )
        xref_at = len(self.head) + self.pixels + len(b"\nendstream\nendobj\n")
        self.tail = b"\nendstream\nendobj\n" + b"xref\n0 6\n0000000000 65535 f \n"
        self.tail += b"".join(b"%010d 00000 n \n" % o for o in offsets)
        self.tail += b"trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref_at
        self.size = len(self.head) + self.pixels + len(self.tail)

    def pieces(self) -> Iterator[bytes]:
        yield self.head
        left, n = self.pixels, 0
        while left:
            piece = (n.to_bytes(8, "little") + BLOCK[8:])[: min(MIB, left)]
            left -= len(piece)
            n += 1
            yield piece
        yield self.tail


def multipart(pdf: PdfWithOneImage) -> tuple[int, Iterator[bytes]]:
    """The body's length and its pieces: the file first, the fields after it."""
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="files"; filename="big-scan.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    fields = {"business_type": "新生入学", "year": "2023", "title": "bench upload"}
    tail = b"\r\n"
    for name, value in fields.items():
        tail += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    tail += f"--{BOUNDARY}--\r\n".encode()

    def pieces() -> Iterator[bytes]:
        yield head
        yield from pdf.pieces()
        yield tail

    return len(head) + pdf.size + len(tail), pieces()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="size of the upload (1024)")
    args = parser.parse_args()

    pdf = PdfWithOneImage(args.mib * MIB)
    env = {
        "DANGAN_INTAKE__MAX_BYTES": str(2 * pdf.size + MIB),
        "DANGAN_WORKER__IN_SERVER": "false",
    }
    with Server(env) as server:
        token = server.add_user("clerk1", "clerk")
        sampler = RssSampler(server.pid)
        idle_mib = sampler.start_kib / 1024
        sampler.start()
        length, body = multipart(pdf)
        started = time.monotonic()
        with httpx.Client(timeout=httpx.Timeout(600.0)) as client:
            resp = client.post(
                f"{server.url}/api/v1/records",
                content=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                    "Content-Length": str(length),
                },
            )
        seconds = time.monotonic() - started
        time.sleep(0.2)
        sampler.stop()
        if resp.status_code != 201:
            print(server.log.read_text()[-4000:], file=sys.stderr)
            raise SystemExit(f"upload answered {resp.status_code}: {resp.text[:500]}")
        (record,) = resp.json()["records"]
        left = list((server.tmp / "tmp").iterdir())

    peak = sampler.peak_mib
    figures = {
        "bench": "api_upload",
        "bytes": pdf.size,
        "mib": round(pdf.size / MIB, 1),
        "seconds": round(seconds, 2),
        "mib_per_s": round(pdf.size / MIB / seconds, 1),
        "server_rss_before_mib": round(idle_mib, 1),
        "server_peak_rss_mib": round(peak, 1),
        "rss_samples": sampler.samples,
        "server_processes": sampler.processes,
        "target_mib": TARGET_MIB,
        "under_target": peak < TARGET_MIB,
        "archive_code": record["archive_code"],
        "temp_files_left": len(left),
    }
    print(f"upload      {figures['mib']} MiB ({pdf.size:,} bytes), one PDF page")
    print(f"time        {figures['seconds']} s, {figures['mib_per_s']} MiB/s (send to answer)")
    print(f"server RSS  {figures['server_rss_before_mib']} MiB just before the upload")
    print(
        f"server peak {figures['server_peak_rss_mib']} MiB over {sampler.samples} samples: "
        f"{'under' if figures['under_target'] else 'OVER'} the {TARGET_MIB} MiB target"
    )
    print(f"stored as   {record['archive_code']}; temporary files left: {len(left)}")
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
