"""Evaluation on LoCoMo-shaped files (`memory-service eval locomo`, and the benchmarks).

`locomo.py` reads the files (events, questions, raw turns); `run.py` ingests them through
the service and asks every question at every budget, beside `bm25.py`, the BM25 baseline over
raw turns; `recall.py` holds the metrics; `report.py` aggregates a run and presents it.
"""
