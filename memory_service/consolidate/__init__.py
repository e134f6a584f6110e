"""Consolidate: merge near-duplicates, close superseded units (rules, or the LM judge), abstract."""
