"""The fact-level supersession score of `benchmarks/consolidation.py`: an event stands for its group."""

from benchmarks.consolidation import fact_level, prf
from benchmarks.synthetic_log import SyntheticLog


def test_closing_a_restatement_of_the_old_value_counts_and_another_fact_does_not() -> None:
    log = SyntheticLog(events=[], duplicate_groups=[{"old", "old-again"}, {"new", "new-again"}], supersessions={("old", "new")})
    predicted = {("old-again", "new"), ("old", "new-again"), ("other", "new")}
    score = prf(*fact_level(predicted, log))
    # The first two are the same (old fact, new fact) pair; the third closes an unrelated event.
    assert score == {"precision": 0.5, "recall": 1.0, "predicted": 2, "truth": 1}
    assert prf(predicted, log.supersessions)["precision"] == 0.0  # the exact pairs credit none
