"""The results store: units' results on disk keyed by their settings, and ``summary.json``."""

from .store import RECORD_SUFFIX, ResultStore, StoredUnit, readable, settings_key
from .summary import SCHEMA_VERSION, SUMMARY, Summary, read_summary, resolve, row_of

__all__ = ["RECORD_SUFFIX", "ResultStore", "StoredUnit", "readable", "settings_key",
           "SCHEMA_VERSION", "SUMMARY", "Summary", "read_summary", "resolve", "row_of"]
