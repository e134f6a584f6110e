"""Ingest: validate and store events, then compress them window by window into indexed units."""
