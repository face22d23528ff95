"""The dashboard's pages: one per report family, each a list of report sections.

A section shows one report of ``flask_tracking.reports.REPORTS``: its chart, the rows
behind it as a table, and a CSV link. Sections come in three roles:

- ``list``: one row per thing (video, sequence, book, problem). There can be thousands:
  the page shows the top N rows (the report's own order, e.g. by plays), filtered by a
  search on the id (``q``, a substring, any case), one page of N at a time.
- ``detail``: the rows of one thing picked in the list (``?video=ID``; by default the
  first row of the list as shown); the table leaves out the id column (the same on
  every row, and named above it).
- ``series``: rows over days or bins, shown whole (the table up to ``SERIES_ROWS`` rows;
  the CSV has all of them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Section:
    #: The report's name in ``REPORTS``.
    report: str
    title: str
    about: str
    role: str = "series"  # "list", "detail" or "series"


@dataclass(frozen=True, slots=True)
class Family:
    slug: str
    title: str
    about: str
    sections: tuple[Section, ...]
    #: The query parameter that picks one thing of the list (``video``), and its column.
    pick: str | None = None
    id_column: str | None = None

    @property
    def list_section(self) -> Section | None:
        return next((s for s in self.sections if s.role == "list"), None)


#: Most rows a series table shows (the chart and the CSV have them all).
SERIES_ROWS = 400
#: Rows per page of a list: the choices offered, and the default.
PAGE_SIZES = (10, 20, 50, 100)
DEFAULT_PAGE_SIZE = 20

FAMILIES: tuple[Family, ...] = (
    Family(
        "activity",
        "Activity",
        "Events per day by type and source; active learners per day and week.",
        (
            Section("activity", "Events per day", "Stacked by event type (the 8 largest)."),
            Section("learners", "Active learners", "Distinct learners per day and per week."),
        ),
    ),
    Family(
        "video",
        "Video",
        "Plays, viewers and completions per video, and where learners drop off.",
        (
            Section("video", "Videos", "Top videos by plays.", "list"),
            Section(
                "video-curve",
                "View curve",
                "Runs overlapping each 10-second bin of the video (views) and their learners.",
                "detail",
            ),
        ),
        pick="video",
        id_column="video_id",
    ),
    Family(
        "sequence",
        "Sequences",
        "Navigation in sequences: the next / previous / goto mix, units reached, moves.",
        (
            Section("sequence", "Sequences", "Top sequences by navigation events.", "list"),
            Section(
                "sequence-units",
                "Units: visits and the funnel",
                "Moves opening each unit (visits) and learners who reached it.",
                "detail",
            ),
            Section("sequence-transitions", "Moves", "From unit to unit, by move.", "detail"),
        ),
        pick="sequence",
        id_column="sequence_id",
    ),
    Family(
        "textbook",
        "Textbooks",
        "Pages viewed per book, page turns and the navigation mix.",
        (
            Section("textbook", "Books", "Top books by events, by navigation type.", "list"),
            Section("textbook-pages", "Pages", "Views and learners per page opened.", "detail"),
        ),
        pick="book",
        id_column="book",
    ),
    Family(
        "problems",
        "Problems",
        "Learners, attempts, first-try and eventual correctness per problem.",
        (
            Section("problems", "Problems", "Top problems by learners who checked them.", "list"),
            Section(
                "problem-attempts",
                "Attempts",
                "How many learners made 1, 2, 3, ... checks.",
                "detail",
            ),
        ),
        pick="problem",
        id_column="problem_id",
    ),
    Family(
        "health",
        "Data health",
        "Can the data be trusted: failed events, schema status, the Logger's delivery,"
        " clock skew, deliveries waiting.",
        (
            Section(
                "health-failed",
                "Failed events",
                "Per day (of failed_at) and reason; not filtered by course.",
            ),
            Section("health-schema", "Schema status", "Events per status, unknown types."),
            Section(
                "health-delivery",
                "Logger delivery",
                "Events the Logger numbered per day: received and lost (a lower bound).",
            ),
            Section("health-skew", "Clock skew", "Browser clock minus server clock."),
            Section(
                "health-deliveries",
                "Deliveries waiting",
                "Pending and failed per destination, now (neither course nor window applies).",
            ),
        ),
    ),
)

BY_SLUG: dict[str, Family] = {family.slug: family for family in FAMILIES}
