"""The `memory-service` command line: `main.py` builds the app, one module per group of commands."""
