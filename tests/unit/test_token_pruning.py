"""Token pruning's pure parts: mapping LM tokens to words, what is protected, what is dropped.

The real SmolLM2 scores units in tests/integration/test_token_pruning.py.
"""

from __future__ import annotations

import pytest

from memory_service.context.pruning import TokenPruner, protected, prune_words, query_stems_of, word_surprisals


def test_token_surprisal_is_summed_per_word() -> None:
    text = " Ann went 2023-05-07."
    pieces = [b" Ann", b" we", b"nt", b" ", b"2023", b"-05-07", b"."]
    logprobs = [-5.0, -1.0, -0.5, -0.1, -2.0, -3.0, -0.2]
    assert word_surprisals(pieces, logprobs, text) == pytest.approx([5.0, 1.5, 5.2])
    assert word_surprisals([b" Ann", b" went"], [-1.0, -1.0], " Ann goes") is None  # pieces do not spell the text


def test_facts_and_structure_are_protected() -> None:
    stems = query_stems_of("What did she paint?")
    for word in ["Caroline", "2023", "7th", "May", "may", "weekend", "last", "not", "didn't", "group,", "(photo", "painting"]:
        assert protected(word, stems), word
    for word in ["the", "really", "went", "group"]:
        assert not protected(word, stems), word


def test_prune_drops_stopwords_first_by_surprisal_then_content_words() -> None:
    words = "Ann really went to the big lake with Bob".split()
    surprisal = [9.0, 0.5, 3.0, 0.2, 0.1, 1.0, 0.3, 0.4, 9.0]
    # 2 of 9 to drop: the least surprising stopwords, "the" and "to"
    assert prune_words(words, surprisal, 0.7, set()) == "Ann really went big lake with Bob".split()
    # 6 to drop: all 5 stopwords, then the least surprising content word ("lake", not "big")
    assert prune_words(words, surprisal, 0.3, set()) == "Ann big Bob".split()
    assert prune_words(words, surprisal, 0.3, query_stems_of("which lake?")) == "Ann lake Bob".split()
    assert prune_words(words, surprisal, 1.0, set()) == words


def test_an_lm_that_cannot_load_leaves_texts_unpruned() -> None:
    def broken():
        raise FileNotFoundError("no such model: /nowhere.gguf")

    pruner = TokenPruner(broken, keep_ratio=0.5)
    text = "Caroline said that she really went to the support group on Friday and it was great."
    assert pruner.prune(1, "h", text, "support group") == text
    assert pruner.prune(1, "h", text, "support group") == text
    assert pruner.stats.failures == 1 and pruner.stats.pruned == 0  # loading is tried once
    with pytest.raises(ValueError):
        TokenPruner(broken, keep_ratio=0)
