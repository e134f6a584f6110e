"""Rewriting a speaker's first person into their name ("I'm" -> "Caroline is").

Regex based and cheap, like the rest of `compressors.text`.
"""

from __future__ import annotations

import re

_APOS = "'\u2019"  # straight and typographic apostrophes

# --------------------------------------------------------------------------- third person

_ADVERBS = (
    r"(?:really|also|just|still|usually|always|often|never|actually|totally|absolutely|definitely|"
    r"sometimes|only|even|truly|mostly|generally|currently|now|probably|finally)"
)


def _third_person_s(verb: str) -> str:
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    return verb + "s"


# Only these verbs get an "-s" after "I" ("I love" -> "Caroline loves"); anything else
# ("I can", "I went") is left as it is, which is never wrong for past tense and modals.
_VERBS_3RD = {
    v: _third_person_s(v)
    for v in ["love", "like", "hate", "prefer", "enjoy", "think", "want", "need", "know", "feel", "work", "live", "play", "go", "do", "plan", "hope", "guess", "mean", "remember", "believe", "use", "run", "try", "wish", "miss", "watch", "agree", "understand", "see", "say", "get", "make", "take", "keep", "find", "write", "study", "teach", "cook", "paint", "volunteer", "collect", "own", "visit", "spend", "care", "dislike", "adore", "appreciate", "struggle", "wonder", "worry", "practice", "practise", "train", "attend", "support", "identify", "consider", "look", "seem", "tend", "dance", "sing", "swim", "walk", "bake", "draw", "learn", "help", "listen", "hear", "ride", "hike", "travel", "recommend", "suggest", "admire", "bet", "give", "bring", "buy", "call", "check"]
}
_VERBS_3RD["have"] = "has"

_A = f"[{_APOS}]"
# The lookahead on the first letter lets the regex engine skip most positions quickly.
_PRONOUNS = re.compile(
    rf"(?=[IAaMm])(?:"
    rf"(?P<ami>(?<!\d)(?<!\d\s)\b[Aa]m I\b(?![{_APOS}]))"
    rf"|(?<![\w/.{_APOS}-])(?:"
    rf"(?P<im>I{_A}m|I am)"
    rf"|(?P<ive>I{_A}ve)"
    rf"|(?P<ill>I{_A}ll)"
    rf"|(?P<id>I{_A}d)"
    rf"|(?P<dont>I (?:don{_A}t|do not))"
    rf"|(?P<havent>I haven{_A}t)"
    rf"|(?P<verb>I(?P<adv>(?: {_ADVERBS}){{1,2}})? (?P<v>{'|'.join(sorted(_VERBS_3RD, key=len, reverse=True))}))"
    rf"|(?P<bare>I)"
    rf")(?![\w/{_APOS}-])"
    rf"|(?P<my>\b[Mm]y\b)(?!\s+(?:god|gosh|goodness|lord)\b)"
    rf"|(?P<me>\b(?:me|Me|myself|Myself)\b)"
    rf")"
)
_MINE = re.compile(rf"((?:\b(?:of|is|was|are|were|than|be|been|and|or|like)|{_A}s)\s+)mine\b")
_ROMAN_CONTEXT = re.compile(
    r"\b(?:war|part|chapter|phase|volume|vol|type|act|level|season|stage|grade|class|article|title|"
    r"appendix|book|episode|henry|louis|george|elizabeth|charles|edward|james|william|richard)\s+$",
    re.IGNORECASE,
)
_OH_BEFORE = re.compile(r"\boh[\s,]+$", re.IGNORECASE)
_SENTENCE_BEGIN = re.compile(r"(?:^|[.!?:]\s+|[\"(\u201c]\s*)$")


def _before(pattern: re.Pattern[str], m: re.Match[str], span: int = 40) -> bool:
    """Whether `pattern` (anchored with `$`) matches just before the match `m`."""
    return pattern.search(m.string, max(0, m.start() - span), m.start()) is not None


def rewrite_first_person(sentence: str, speaker: str) -> tuple[str, bool]:
    """`to_third_person`, also telling whether a first-person subject was rewritten.

    A sentence-initial "My" counts as attribution too ("Caroline's dog is ...").
    One pass over the sentence, so a speaker name is never rewritten again.
    ("mine" gets its own pass: it only changes after "of", "is"... which a name is not.)
    """
    attributed = False
    possessive = f"{speaker}'s"

    def replace(m: re.Match[str]) -> str:
        nonlocal attributed
        kind = m.lastgroup if m.lastgroup not in ("adv", "v") else "verb"
        if kind == "ami":
            attributed = True
            return ("Is " if m.group(0)[0] == "A" else "is ") + speaker
        if kind == "my":
            if _before(_OH_BEFORE, m):
                return m.group(0)
            if _before(_SENTENCE_BEGIN, m):
                attributed = True
            return possessive
        if kind == "me":
            return speaker
        if kind == "bare" and _before(_ROMAN_CONTEXT, m):
            return m.group(0)
        attributed = True
        if kind == "im":
            return f"{speaker} is"
        if kind == "ive":
            return f"{speaker} has"
        if kind == "ill":
            return f"{speaker} will"
        if kind == "id":
            return f"{speaker} would"
        if kind == "dont":
            return f"{speaker} does not" if m.group("dont").endswith("not") else f"{speaker} doesn't"
        if kind == "havent":
            return f"{speaker} hasn't"
        if m.group("verb"):
            return f"{speaker}{m.group('adv') or ''} {_VERBS_3RD[m.group('v')]}"
        return speaker

    text = _PRONOUNS.sub(replace, sentence)
    if "mine" in sentence:
        text = _MINE.sub(lambda m: m.group(1) + possessive, text)
    return text, attributed


def to_third_person(sentence: str, speaker: str) -> str:
    """Rewrite first person to the speaker's name ("I'm" -> "<speaker> is", "my" -> "<speaker>'s").

    Only whole words change; "you" and "we" are left alone, and "mine" is rewritten
    only where it is clearly the pronoun ("of mine", "is mine"), never "a gold mine".
    """
    return rewrite_first_person(sentence, speaker)[0]
