"""The demo's media files: a five-page PDF textbook and an eight-second WebM lecture.

Both are committed under ``demo_app/static/media/``; this module is how they were made.

    python -m demo_app.media          # write both (the WebM needs ffmpeg)
    python -m demo_app.media --pdf    # only the PDF (pure Python)

The PDF is written by hand (about 5 KB, Helvetica, no dependencies) and is byte-for-byte
reproducible. The WebM is rendered by ffmpeg (``apt-get install ffmpeg``) from a plain
background, a title, a running clock and a progress bar: VP9, 480x270, 15 frames per
second, a key frame every second so seeking is exact, no audio track.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

MEDIA_DIR = Path(__file__).resolve().parent / "static" / "media"
PDF_PATH = MEDIA_DIR / "textbook.pdf"
WEBM_PATH = MEDIA_DIR / "lecture.webm"

#: Seconds of video.
VIDEO_SECONDS = 8

PAGE_WIDTH, PAGE_HEIGHT = 420, 560

#: (heading, paragraph lines) of each textbook page.
PAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "What is a learning event?",
        (
            "Every time a learner plays a video, turns a page",
            "or checks an answer, the course records one event:",
            "its type (play_video, book, problem_check), who,",
            "when, on which page, and a small payload.",
            "",
            "Turn the page with the buttons above the book.",
        ),
    ),
    (
        "Where events come from",
        (
            "Browser events are logged by the Logger script in",
            "the page: video, sequence and textbook moves.",
            "",
            "Server events are emitted by the course code while",
            "it handles a request: the grade of a problem,",
            "a reset, a saved answer.",
        ),
    ),
    (
        "The durable queue",
        (
            "The Logger writes each event to localStorage",
            "before it sends anything. Events leave the queue",
            "only when the server has answered for them.",
            "",
            "Go offline, keep clicking, come back online:",
            "nothing is lost.",
        ),
    ),
    (
        "Exactly once",
        (
            "Every event carries a UUID. The server keeps one",
            "row per UUID, so sending an event again (after a",
            "timeout, from a beacon, from the next page load)",
            "never stores it twice.",
        ),
    ),
    (
        "Reading the tables",
        (
            "The events land in the tracking_events table.",
            "Query it with SQLAlchemy through",
            "tracking.events(...), or watch it live on the",
            "Events page of this demo.",
            "",
            "This is the last page: well done!",
        ),
    ),
)


def _pdf_text(value: str) -> str:
    """A PDF literal string (ASCII only)."""
    escaped = value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"({escaped})"


def _page_stream(number: int, heading: str, lines: tuple[str, ...]) -> bytes:
    total = len(PAGES)
    top = PAGE_HEIGHT
    title = _pdf_text("Learning Analytics 101 - Chapter 1")
    subtitle = _pdf_text("A textbook about the events of this course")
    ops = [
        # A coloured band with the book's title, then the page number, heading and text.
        "0.118 0.231 0.373 rg",
        f"0 {top - 64} {PAGE_WIDTH} 64 re f",
        f"BT 1 1 1 rg /F2 13 Tf 28 {top - 30} Td {title} Tj ET",
        f"BT 0.85 0.9 1 rg /F1 10 Tf 28 {top - 48} Td {subtitle} Tj ET",
        f"BT 0.1 0.1 0.1 rg /F2 30 Tf 28 {top - 130} Td {_pdf_text(f'Page {number}')} Tj ET",
        f"BT 0.118 0.231 0.373 rg /F2 17 Tf 28 {top - 165} Td {_pdf_text(heading)} Tj ET",
        f"BT 0.15 0.15 0.15 rg /F1 12.5 Tf 17 TL 28 {top - 205} Td",
    ]
    for line in lines:
        ops.append(f"{_pdf_text(line)} Tj T*")
    ops.append("ET")
    ops.append("0.8 0.8 0.8 RG 1 w 28 48 m 392 48 l S")
    ops.append(f"BT 0.4 0.4 0.4 rg /F1 10 Tf 28 32 Td {_pdf_text(f'{number} / {total}')} Tj ET")
    return "\n".join(ops).encode("ascii")


def pdf_bytes() -> bytes:
    """The textbook as PDF bytes (deterministic)."""
    count = len(PAGES)
    # Objects: 1 catalog, 2 pages, 3-4 fonts, then (page, content) pairs.
    page_ids = [5 + 2 * i for i in range(count)]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: (
            f"<< /Type /Pages /Count {count} /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] >>"
        ).encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        4: (
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold"
            b" /Encoding /WinAnsiEncoding >>"
        ),
    }
    for index, (heading, lines) in enumerate(PAGES):
        page_id = page_ids[index]
        stream = _page_stream(index + 1, heading, lines)
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}]"
            f" /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {page_id + 1} 0 R >>"
        ).encode()
        objects[page_id + 1] = (
            f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    xref_at = len(out)
    size = max(objects) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    for number in range(1, size):
        out += f"{offsets[number]:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


def write_pdf(path: Path = PDF_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pdf_bytes())
    return path


def _font() -> str | None:
    for candidate in (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    ):
        if Path(candidate).exists():
            return candidate
    return None


def write_webm(path: Path = WEBM_PATH) -> Path:
    """Render the lecture video with ffmpeg (raises ``RuntimeError`` without it)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed (Debian: apt-get install ffmpeg)")
    font = _font()
    text = f"fontfile={font}:" if font else ""
    graph = ";".join(
        [
            f"color=c=0xf2b134:s=480x14:r=15:d={VIDEO_SECONDS}[bar]",
            f"[0:v][bar]overlay=x='-w+W*t/{VIDEO_SECONDS}':y=H-h:shortest=1,"
            f"drawtext={text}text='Lecture 1':fontcolor=white:fontsize=34:x=32:y=40,"
            f"drawtext={text}text='Why we track learning':fontcolor=0xd9e6ff:fontsize=22:x=32:y=88,"
            f"drawtext={text}text='%{{pts\\:hms}}':fontcolor=white:fontsize=40:x=32:y=h-90[out]",
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        ffmpeg, "-y", "-loglevel", "error",
        "-f", "lavfi", "-i", f"color=c=0x1e3b5f:s=480x270:r=15:d={VIDEO_SECONDS}",
        "-filter_complex", graph, "-map", "[out]",
        "-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "45", "-g", "15", "-row-mt", "1",
        "-an", "-bitexact", "-map_metadata", "-1",
        str(path),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    return path


def ensure_media() -> list[str]:
    """Write what is missing that can be made without tools; notes for the rest."""
    notes = []
    if not PDF_PATH.exists():
        write_pdf()
        notes.append(f"wrote {PDF_PATH}")
    if not WEBM_PATH.exists():
        notes.append(f"{WEBM_PATH} is missing: run `python -m demo_app.media` (needs ffmpeg)")
    return notes


def main(argv: list[str]) -> int:
    print(f"wrote {write_pdf()}")
    if "--pdf" not in argv:
        try:
            print(f"wrote {write_webm()}")
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"could not write the WebM: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
