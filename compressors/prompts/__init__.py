"""Prompts as data: each with its answer schema and a VERSION that goes into cache keys."""
