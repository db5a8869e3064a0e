"""Reading a summary.json as a test does: rows with their paths resolved from the folder."""

import json
from pathlib import Path

from featscope.store import resolve


def summary_rows(folder: Path) -> list[dict]:
    """The rows of ``folder/summary.json``, each path made absolute (paths in a summary are
    relative to its folder)."""
    rows = json.loads((Path(folder) / "summary.json").read_text())["results"]
    for row in rows:
        row["files"] = {k: str(resolve(folder, v)) for k, v in row["files"].items()}
        for key in ("image", "transparency"):
            if row.get(key):
                row[key] = str(resolve(folder, row[key]))
    return rows
