"""`python -m memory_service.cli`: the same app as the `memory-service` script."""

from memory_service.cli.main import main

main()
