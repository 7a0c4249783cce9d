"""The harvesting scenario of issue 5: the seed, then a new page, a changed entry, a removed one."""

from __future__ import annotations

from pathlib import Path

from live import SEED

NEW_PAGE = """Library – Youth Justice

Youth justice statistics 2024

Added: 05/03/2025 at 2:30 pm Category: Youth Justice, Safeguarding

Annual statistics on children and young people in the youth justice system.

Serious violence duty guidance

Added: 12/06/2025 at 9:05 am Category: Youth Justice

Statutory guidance for the serious violence duty.
No Comments
"""
NEW_TITLES = ("Youth justice statistics 2024", "Serious violence duty guidance")
CHANGED_TITLE = "Break4Change Programme Toolkit"
OLD_DESCRIPTION = (
    "For professionals working with families where young people are violent/abusive towards "
    "their parents/carers."
)
NEW_DESCRIPTION = "A toolkit for professionals supporting families facing child-to-parent violence."
REMOVED_TITLE = "Becoming Trauma Informed"


def remove_entry(text: str, title: str) -> str:
    """The listing text without one entry (its title line up to the next entry's title)."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    end = next(
        (
            j
            for j in range(start + 3, len(lines) - 2)
            if lines[j].strip() and lines[j + 2].startswith("Added:")
        ),
        len(lines),
    )
    return "".join(lines[:start] + lines[end:])


def write_seed(folder: Path) -> list[Path]:
    """The seed library as one listing page in folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.txt"):
        old.unlink()
    path = folder / "library-safeguarding.txt"
    path.write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    return [path]


def write_changed(folder: Path) -> list[Path]:
    """The seed with one description changed and one entry removed, plus a new page."""
    seed = SEED.read_text(encoding="utf-8")
    assert OLD_DESCRIPTION in seed
    text = remove_entry(seed.replace(OLD_DESCRIPTION, NEW_DESCRIPTION), REMOVED_TITLE)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "library-safeguarding.txt").write_text(text, encoding="utf-8")
    (folder / "library-youth-justice.txt").write_text(NEW_PAGE, encoding="utf-8")
    return sorted(folder.glob("*.txt"))
