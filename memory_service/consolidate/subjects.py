"""Who a statement is about, read from a clause of a unit's text (`statements` uses these).

- first person ("I", "my", "we") is the speaker of "X said: ..."; a named person leading the
  clause is that person; "my friend/sister/boss ..." is someone else (`speaker's friend`), and
  such a relation with many members ("a friend", "my cousin") is `vague`, one-of-a-kind ones
  (mother, partner) are not;
- "my friend Oscar" and a name set off by commas ("Emma, a colleague of mine, ...") are their
  own subjects;
- a thing leading its clause ("the billing service listens on ...") is itself, and a thing's
  attribute (a port, a host) belongs to the noun phrase before its verb (`thing_before`).
"""

from __future__ import annotations

import re

from compressors.text.words import STOPWORDS

FIRST_PERSON = r"(?:i|we|i'm|i've|we're|we've|i am|we are|i have|we have)"
NAME = r"(?-i:[A-Z])[\w-]+"
# Who a frame is about, where the frame names them: "I"/"me"/"my", or a name (the extractive
# compressor writes "Hana's" for "my" and "Hana" for "I" in third-person units).
WHO = rf"(?P<who>i|we|me|us|{NAME})"
WHOSE = rf"(?P<who>my|our|{NAME}'s|{NAME}\u2019s)"
HUMAN_RELATIONS = (
    "friend|friends|neighbou?r|neighbou?rs|brother|sister|sibling|mom|mum|mother|dad|father|parents?|son|daughter|"
    "kids?|children|child|wife|husband|partner|boyfriend|girlfriend|fianc[eé]e?|boss|manager|colleague|coworker|"
    "co-worker|roommate|flatmate|cousin|aunt|uncle|grandma|grandmother|grandpa|grandfather|niece|nephew|buddy|pal"
)
_OTHER_PERSON = re.compile(
    rf"^(?:(?:my|our|(?P<owner>{NAME})(?:'s|\u2019s))\s+(?:best\s+|old\s+|new\s+|older\s+|younger\s+|little\s+|big\s+)?(?P<rel>{HUMAN_RELATIONS})\b"
    rf"|(?:a|one)\s+(?P<rel2>{HUMAN_RELATIONS})\s+of\s+(?:mine|ours)\b)",
    re.IGNORECASE,
)
THIRD_PRONOUN = re.compile(r"^(?:he|she|they|he's|she's|they're|his|her|their|it|it's|you|you're|your)\b", re.IGNORECASE)
_LEADING_NAME = re.compile(r"^(?P<name>[A-Z][a-z]+(?:\s[A-Z][a-z]+)?)(?:'s)?\s+(?=[a-z])")


# Words that say when or how sure, not what ("in Boston these days" = "in Boston").
NOT_VALUE_WORDS = frozenset(
    "now these days currently still really actually again there today new old just finally officially "
    "honestly lately recently nowadays good anything else ever all-time absolute personal".split()
)


def person_of(match: re.Match[str], speaker: str | None, subject: str | None) -> str | None:
    """The frame's own person (its `who` group: "me", "my", "Hana's"), else the clause's subject."""
    who = match.groupdict().get("who")
    if not who:
        return subject
    who = who.lower().removesuffix("'s").removesuffix("\u2019s")
    if who in {"i", "we", "me", "us", "my", "our"}:
        return speaker.lower() if speaker else None
    return who


_THING_SUBJECT = re.compile(
    r"^(?:the|our)\s+(?P<np>(?:[a-z][\w-]*\s+){0,2}[a-z][\w-]*)\s+"
    r"(?=(?:is|are|runs|listens|uses|serves|talks|connects|lives|works|has)\b)",
    re.IGNORECASE,
)


def subject_of(clause: str, speaker: str | None, inherited: str | None, opening: bool = True) -> tuple[str | None, str]:
    """(normalised subject, the clause without it) for a clause, or (None, clause) when unresolved."""
    if not opening and inherited is not None and _APPOSITION.match(clause):
        return inherited, ""  # "Emma, a colleague of mine, lives in ...": still Emma
    bare = BARE_NAME.match(clause)
    if bare and is_name(clause):
        return clause.lower(), ""  # "Emma, ...": the sentence is about Emma
    other = _OTHER_PERSON.match(clause)
    if other:
        rest = clause[other.end() :].strip()
        named = _LEADING_NAME.match(rest)
        if named and is_name(named.group("name")):
            return named.group("name").lower(), rest  # "my friend Oscar lives in ...": Oscar
        relation = (other.group("rel") or other.group("rel2")).lower().rstrip("s")
        owner = other.group("owner") or speaker
        return (f"{owner.lower()}'s {relation}" if owner else None), rest
    if THIRD_PRONOUN.match(clause):
        return None, clause
    thing = _THING_SUBJECT.match(clause)
    if thing:
        return strip_adverbs(thing.group("np")).lower(), clause  # "The billing service listens on ...": the service
    lowered = clause.lower()
    if (
        re.match(rf"^{FIRST_PERSON}\b|^(?:my|our|me)\b", lowered)
        or re.search(r"\b(?:i|we|i'm|we're|i've|we've)\b", lowered)
        or re.search(r"\b(?:hired|took|taken|employs?|offered|promoted)\s+(?:me|us)\b", lowered)
    ):
        return (speaker.lower() if speaker else None), clause
    name = _LEADING_NAME.match(clause)
    # "Caroline works at ..." (a name leading a verb) and "Caroline is employed by ..." (a name
    # before a participle), not "Osaka is where I live" or "Ramen is the best" (a value first).
    after = clause[name.end() :] if name else ""
    if (
        name
        and is_name(name.group("name"))
        and (not re.match(r"^(?:is|are|remains|has become|has been|feels like)\b", after) or _PARTICIPLE_PREDICATE.match(after))
    ):
        return name.group("name").lower(), clause
    return (speaker.lower() if speaker else None) if inherited is None else inherited, clause


_UNIQUE_RELATIONS = frozenset(
    "mom mum mother dad father wife husband partner boyfriend girlfriend fiance fiancee fiancé fiancée".split()
)


def vague(subject: str) -> bool:
    """"my friend", "Ana's cousin": one of several, so two of their values are not one value changing."""
    owner, _, relation = subject.rpartition("'s ")
    return bool(owner) and re.fullmatch(HUMAN_RELATIONS, relation) is not None and relation not in _UNIQUE_RELATIONS


_PARTICIPLE_PREDICATE = re.compile(
    r"^(?:is|are|has been)\s+(?:now\s+|still\s+|currently\s+|also\s+)?"
    r"(?:(?:based|employed|stationed|settled|married|engaged|dating|seeing|living|working|hired|staying)\b"
    r"|an?\s+(?:[a-z][\w-]*\s+){1,3}(?:at|for|with)\s+(?-i:[A-Z]))",
    re.IGNORECASE,
)
BARE_NAME = re.compile(r"^(?-i:[A-Z])[a-z]+(?:\s(?-i:[A-Z])[a-z]+)?$")
# A noun phrase set off by commas that renames the subject: "a colleague of mine", "my old classmate".
_APPOSITION = re.compile(
    rf"^(?:a|an|one|my|our|his|her|their|the|{NAME}'s|{NAME}\u2019s)\s+(?:[a-z][\w-]*\s+){{0,2}}?"
    rf"(?:{HUMAN_RELATIONS}|classmates?|teammates?|housemates?|mentors?|acquaintances?|[a-z]+(?:er|or|ist|ian)s?)"
    rf"(?:\s+of\s+(?:mine|ours|yours|his|hers|theirs|{NAME}(?:'s|\u2019s)?))?$",
    re.IGNORECASE,
)
_ADVERBS_AFTER = re.compile(r"(?:\s+(?:now|still|currently|also|already|just|only|again|actually|is|are))+$", re.IGNORECASE)


def strip_adverbs(phrase: str) -> str:
    return _ADVERBS_AFTER.sub("", phrase).strip()


def thing_before(body: str, start: int) -> str | None:
    """The thing a frame is about: the noun phrase before its verb ("notifications-worker listens
    on port ..." -> "notifications-worker"), None for a pronoun, a person or nothing."""
    head = re.sub(r"^(?:the|our|my|a|an|this|that)\s+", "", body[:start].strip(), flags=re.IGNORECASE)
    head = strip_adverbs(head)
    words = head.split()
    if not 1 <= len(words) <= 4 or THIRD_PRONOUN.match(head) or re.match(rf"^{FIRST_PERSON}\b", head, re.IGNORECASE):
        return None
    return head.lower()


def is_name(words: str) -> bool:
    """A capitalised word that starts a sentence is a name unless it is a common word
    ("After", "Today", "Honestly", "Traded")."""
    first = words.split()[0].lower()
    return not (first in STOPWORDS or first in NOT_VALUE_WORDS or first in _NOT_NAMES or first.endswith(("ly", "ed", "ing")))


_NOT_NAMES = frozenset(
    "after before since when while today yesterday tomorrow last this next now still finally big great good nothing "
    "everything something anyway also well yes no sure thanks oh wow hey so then plus".split()
)
