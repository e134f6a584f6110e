"""The words of the language every stage reads: stop words, month and weekday names, the
word pattern the lexical index and the stems split on, and the Snowball stemmer.

Retrieval, selection, query analysis, token pruning, consolidation, grounding and the
extractive compressor import these instead of keeping copies of their own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence, Set
from functools import lru_cache

import Stemmer

MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)
MONTH_ABBREVIATIONS = ("jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec")
# Month number of each full name, three-letter abbreviation ("may" included) and "sept".
MONTH_NUMBERS: dict[str, int] = {name: i for i, name in enumerate(MONTH_NAMES, start=1)}
MONTH_NUMBERS.update({name[:3]: number for name, number in list(MONTH_NUMBERS.items())})
MONTH_NUMBERS["sept"] = 9
# A month name or abbreviation as written in text ("Sept" before "Sep"); match case-insensitively
# where lower case counts too.
MONTH_PATTERN = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)"
)

WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAY_ABBREVIATIONS = ("mon", "tue", "tues", "wed", "thu", "thurs", "fri", "sat", "sun")
WEEKDAY_PATTERN = "(?:" + "|".join(d.capitalize() for d in WEEKDAY_NAMES) + ")"

STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "almost", "also", "although", "always", "am", "among", "an", "and", "another", "any", "anybody", "anyone", "anything", "anyway", "anyways", "are", "aren", "around", "as", "at", "away", "back", "be", "became", "because", "become", "been", "before", "being", "below", "between", "both", "but", "by", "can", "cannot", "could", "couldn", "did", "didn", "do", "does", "doesn", "doing", "don", "done", "down", "during", "each", "either", "else", "enough", "even", "ever", "every", "everyone", "everything", "few", "for", "from", "further", "get", "gets", "getting", "go", "goes", "going", "gone", "gonna", "got", "gotta", "had", "hadn", "has", "hasn", "have", "haven", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "however", "i", "if", "im", "in", "into", "is", "isn", "it", "its", "itself", "ive", "just", "kind", "kinda", "let", "lets", "like", "liked", "lot", "lots", "made", "make", "makes", "making", "many", "may", "maybe", "me", "might", "mine", "more", "most", "much", "must", "my", "myself", "need", "needs", "never", "no", "nor", "not", "nothing", "now", "of", "off", "often", "oh", "ok", "okay", "on", "once", "one", "only", "onto", "or", "other", "others", "otherwise", "our", "ours", "ourselves", "out", "over", "own", "per", "perhaps", "pretty", "quite", "rather", "really", "right", "said", "same", "say", "says", "see", "seem", "seems", "shall", "she", "should", "shouldn", "since", "so", "some", "somebody", "someone", "something", "sometimes", "somewhat", "soon", "still", "such", "sure", "take", "than", "that", "thats", "the", "their", "theirs", "them", "themselves", "then", "there", "therefore", "these", "they", "thing", "things", "think", "this", "those", "though", "through", "thus", "till", "to", "too", "toward", "towards", "under", "unless", "until", "up", "upon", "us", "use", "used", "very", "want", "wanna", "was", "wasn", "way", "we", "well", "went", "were", "weren", "what", "whatever", "when", "whenever", "where", "wherever", "whether", "which", "while", "who", "whoever", "whom", "whose", "why", "will", "with", "within", "without", "won", "would", "wouldn", "yeah", "yes", "yet", "you", "your", "yours", "yourself", "yourselves", "ll", "ve", "re", "d", "s", "t", "m", "actually", "basically", "definitely", "literally", "probably", "totally", "yep", "yup", "hey", "hi", "hello", "thanks", "thank", "please", "cool", "great", "nice", "awesome", "amazing", "wow", "lol", "haha", "good", "bad", "sounds", "sound", "stuff", "bit", "kinda", "sorta", "etc", "today", "tonight", "yesterday", "tomorrow", "week", "weekend", "month", "year", "day", "days", "weeks", "months", "years", "time"]
)

# The word of the lexical index and of the stems: a run of letters and digits ("Caroline's"
# gives "caroline" and "s"; "_" splits too). SQLite's FTS5 and PostgreSQL's tsvector split
# unit texts much the same way.
TERM = re.compile(r"[^\W_]+", re.UNICODE)
# A word of a question as query analysis reads it: word characters, one apostrophe inside
# ("caroline's" stays whole).
QUERY_WORD = re.compile(r"[\w]+(?:['\u2019]\w+)?")


def lexical_terms(text: str, limit: int = 32) -> list[str]:
    """The distinct lower-cased terms of `text` in order, at most `limit` (what lexical search ORs)."""
    terms: list[str] = []
    for word in TERM.findall(text.lower()):
        if word not in terms:
            terms.append(word)
    return terms[:limit]


def query_words(query: str) -> list[str]:
    """The lower-cased words of a question, in order, repeats kept."""
    return [w.lower() for w in QUERY_WORD.findall(query)]


STEMMER = Stemmer.Stemmer("english")


def stem_words(words: Sequence[str]) -> list[str]:
    """Snowball English stems of `words`, in order."""
    return list(STEMMER.stemWords(list(words)))


def stem_word(word: str) -> str:
    return str(STEMMER.stemWord(word))


@lru_cache(maxsize=100_000)
def stems(text: str) -> frozenset[str]:
    """The stems of a text's content terms (stop words left out)."""
    return frozenset(STEMMER.stemWords([w for w in lexical_terms(text, limit=500) if w not in STOPWORDS]))


def rarity_weights(terms: Iterable[str], documents: Sequence[Set[str]]) -> dict[str, float]:
    """An IDF per term over a few documents (stem sets): log((n + 1) / (df + 0.5)), so a term in
    every document still weighs a little and one in none weighs most."""
    n = len(documents)
    return {t: math.log((n + 1) / (sum(t in d for d in documents) + 0.5)) for t in terms}
