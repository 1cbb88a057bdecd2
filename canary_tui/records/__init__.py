"""Append-only, crash-safe records of what happened: the audit log (and later the recording)."""
