"""The results store: units' results on disk keyed by their settings, and ``summary.json``;
``Background`` writes a finished batch while the next one renders."""

from .background import Background
from .location import Location, is_url
from .store import (
    RECORD_SUFFIX,
    ResultStore,
    StoredUnit,
    readable,
    readable_data,
    settings_key,
)
from .summary import SCHEMA_VERSION, SUMMARY, Summary, read_summary, resolve, row_of

__all__ = ["Background", "Location", "is_url",
           "RECORD_SUFFIX", "ResultStore", "StoredUnit", "readable",
           "readable_data", "settings_key",
           "SCHEMA_VERSION", "SUMMARY", "Summary", "read_summary", "resolve", "row_of"]
