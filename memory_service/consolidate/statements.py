"""Subject-attribute-value statements read from a unit's text, for consolidation.

Embedding similarity cannot pair a fact with its paraphrase ("I'm based in Lisbon" /
"Lisbon is where I call home", cosine ~0.75) or with its update ("I live in Lisbon" /
"We finished moving into our new place in Osaka", cosine ~0.4). Both state one
*attribute* (residence) of one *subject* (the speaker), so consolidation matches units
on the normalised `(subject, attribute)` key and compares the values: the same value is
a restatement, another value an update.

The rules are general English, not any log's phrasing:
- the subject (`memory_service.consolidate.subjects`): first person ("I", "my", "we") is
  the speaker of "X said: ..."; a named person leading the clause is that person; "my
  friend/sister/boss ..." is someone else (`speaker's friend`), so a friend's job never
  updates the speaker's;
- attribute frames: state verbs with their preposition ("live in", "work at/as", "drive
  a"), copulas and possessives ("my home is in X", "my favorite dish is X"), value-first
  inversions ("X is where I live", "X is my favorite"), role nouns ("the nurse role"),
  result states ("moved to X", "X hired me as", "first day as", "bought a <car>"),
  comparatives of preference ("nothing beats X", "I'd pick X over anything");
- what is not a current state is skipped: questions, plans and hypotheticals ("going
  to", "might", "if", "thinking of"), the habitual past ("used to", "lived in"), and
  one-off events, which have no frame ("flew to Rome" is not "lives in Rome").

Values are compared as sets of content words: one inside the other is the same value.
Favourite things carry a category: the one their noun names ("my favourite dish": food),
else a guess from the value by `categorize` (the consolidator passes one that uses the
embedder). A guess is weak: it never keeps two favourites with the same value apart, and
it only pairs an update with a favourite of the guessed category.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

from compressors.text.words import STOPWORDS
from memory_service.consolidate.subjects import (
    BARE_NAME,
    HUMAN_RELATIONS,
    NAME,
    NOT_VALUE_WORDS,
    WHO,
    WHOSE,
    person_of,
    subject_of,
    thing_before,
    vague,
)

# Attributes with one current value: a different value is an update.
SINGLE_VALUED = frozenset(
    ["residence", "employer", "occupation", "vehicle", "partner", "favorite", "result", "has", "port", "language", "hosting"]
)

_SAID = re.compile(r"^(?P<name>[^\W\d][\w .'\u2019-]{0,60}?) said: ", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
# Clause boundaries: commas, dashes and coordinating conjunctions before a new verb phrase.
_CLAUSE = re.compile(r"\s*(?:,|\s-\s|\s\u2014\s|:(?=\s))\s*|\s+(?:and|but|so|because|while|though|although)\s+", re.IGNORECASE)

# Not a current state: questions, plans, hypotheticals, wishes, the habitual past.
_NOT_CURRENT = re.compile(
    r"\b(?:if|unless|would|could|might|may|maybe|perhaps|should|will|won't|shall|gonna|going to|plan|plans|planning|"
    r"want to|wants to|wanna|hope to|hoping to|hopes to|wish|wishes|dream|dreams|dreaming|thinking (?:about|of)|"
    r"considering|someday|one day|used to|back then|when i was|years ago|in the past"
    r"|whether|needs? to|trying to|try to|about to|(?:have|has) to(?! be\b)|intends? to|aiming to"
    r"|next (?:week|month|year|summer|spring|fall|autumn|winter))\b|['\u2019](?:ll|d)\b",
    re.IGNORECASE,
)
# "I'd pick X over anything" is a preference, not a hypothetical: read before the filter.
_PREFERENCE_WOULD = re.compile(
    rf"\b(?:i'd|we'd|{WHO}\s+would)\s+(?:always\s+)?(?:pick|choose|take|go for|rather have|rather eat)\s+(?P<v>.+?)"
    r"\s+over\s+(?:anything|everything|any other|all|every)\b",
    re.IGNORECASE,
)
_QUESTION_START = re.compile(
    r"^(?:do|does|did|is|are|was|were|have|has|can|could|would|should|will|what|where|which|who|why|how|when)\b",
    re.IGNORECASE,
)
_PAST = re.compile(
    r"\b(?:lived|worked|drove|was living|was working|used to"
    r"|(?:was|were|had been)\s+(?:\w+\s+)?(?:based|employed|stationed|settled|married|engaged|dating|hired|living|working))\b",
    re.IGNORECASE,
)
_DENIAL = re.compile(r"\b(?:never|not ever|n't ever)\b", re.IGNORECASE)
_NEGATED = re.compile(
    r"\b(?:not|never|no longer|nor|quit|quitting|left|leaving|lost|resigned|retired|sold|selling|got rid of|gave up)\b|n't\b",
    re.IGNORECASE,
)

_CAPITALISED = re.compile(r"[A-Z][\w&'.-]*(?:\s+(?:of|de|da|del|la|le|the|&|and)?\s*[A-Z0-9][\w&'.-]*)*")
_WORD = re.compile(r"[\w'\u2019&-]+")
_VALUE_STOP = re.compile(
    r"\s+(?:for|with|since|because|after|before|when|where|which|who|that|than|to|from|on|about|ever since|"
    r"these days|right now|for now|for good|at the moment|lately|recently|nowadays|now|today|this year|"
    r"this month|last (?:week|month|year)|over|in)\b.*$",
    re.IGNORECASE,
)
_COLOURS = frozenset(
    "red blue green black white silver grey gray yellow orange purple pink brown gold beige navy maroon".split()
)

_VEHICLE_NOUN = r"(?:car|truck|pickup|van|minivan|suv|jeep|motorbike|motorcycle|scooter|bike|ride|vehicle|hatchback|sedan|wagon)"
_CAR_MAKES = frozenset(
    "honda toyota ford mazda subaru vw volkswagen bmw audi mercedes mercedes-benz tesla kia hyundai nissan chevy "
    "chevrolet jeep volvo fiat peugeot renault skoda seat porsche lexus acura infiniti dodge ram gmc buick cadillac "
    "chrysler lincoln mini mitsubishi suzuki citroen citroën opel alfa jaguar land rover range yamaha ducati harley "
    "kawasaki vespa rivian polestar saab datsun".split()
)
_ROLE_NOUN = r"(?:role|position|job|post|gig)"
_OCCUPATION_SUFFIX = re.compile(
    r"(?:er|or|ist|ian|ant|ent|eer|nurse|chef|cook|pilot|doctor|lawyer|architect|teacher|baker|barista|"
    r"clerk|medic|surgeon|dentist|vet|analyst|consultant|designer|developer|engineer|manager|director|intern|"
    r"assistant|accountant|librarian|mechanic|plumber|electrician|carpenter|firefighter|officer|scientist|"
    r"student|professor|lecturer|tutor|coach|trainer|artist|writer|journalist|editor|photographer|musician)s?$",
    re.IGNORECASE,
)

_FAVORITE_CATEGORY_NOUNS = {
    "food": "food", "dish": "food", "dishes": "food", "meal": "food", "cuisine": "food", "snack": "food",
    "dessert": "food", "thing to eat": "food", "comfort food": "food",
    "drink": "drink", "beverage": "drink",
    "color": "color", "colour": "color",
    "movie": "movie", "film": "movie", "show": "show", "series": "show",
    "book": "book", "novel": "book", "author": "author", "writer": "author",
    "song": "music", "band": "music", "artist": "music", "singer": "music", "album": "music", "genre": "music",
    "music": "music",
    "sport": "sport", "team": "team", "game": "game",
    "city": "place", "place": "place", "country": "place", "spot": "place", "restaurant": "restaurant",
    "animal": "animal", "season": "season", "hobby": "hobby", "flower": "flower",
}
FAVORITE_CATEGORIES: dict[str, str] = {
    "food": "a food, dish or meal to eat",
    "drink": "a drink or beverage",
    "color": "a colour",
    "movie": "a movie or film",
    "show": "a TV show or series",
    "book": "a book or novel",
    "music": "a song, band, singer or kind of music",
    "sport": "a sport",
    "team": "a sports team",
    "game": "a game or video game",
    "place": "a city, country or place to visit",
    "animal": "an animal",
    "season": "a season of the year",
    "hobby": "a hobby or activity",
}

Categorize = Callable[[str], str | None]


@dataclass(frozen=True)
class Statement:
    """`subject` and `attribute` are normalised (lowercase); `value` is a set of content words."""

    subject: str
    attribute: str
    value: frozenset[str]
    negated: bool = False
    denial: bool = False  # negated with "never": denies it was ever so (a contradiction, not an update)
    category: str | None = None  # favourites: the category their noun names ("dish" -> food)
    guess: str | None = None  # favourites without a category noun: the category the value suggests
    # Strong enough to close another unit: a plain assertion (not a passing mention like "our flat in
    # X gets cold") about one identifiable subject (not "my friend", one of many).
    firm: bool = True
    # Other `subject|attribute` keys naming the same fact: the canonical key ("billing-service|port" ->
    # "billing|port", "ana|has:partner" -> "ana|partner"), and for a tool call with one argument the keys
    # a sentence about that argument would have (`get_config(service=billing)` result port -> "billing|port").
    also: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.subject}|{self.attribute}"

    @property
    def all_keys(self) -> tuple[str, ...]:
        return (self.key, *self.also)

    @property
    def is_tool(self) -> bool:
        return self.subject.startswith("tool ")

    @property
    def single_valued(self) -> bool:
        return self.attribute.split(":", 1)[0] in SINGLE_VALUED


def same_value(a: Statement, b: Statement) -> bool:
    """One value inside the other ("Acme Corp" / "Acme"): the same value."""
    return bool(a.value) and bool(b.value) and (a.value <= b.value or b.value <= a.value)


def _content(text: str) -> frozenset[str]:
    words = {w.lower().strip("'\u2019").removesuffix("'s").removesuffix("\u2019s") for w in _WORD.findall(text)}
    words = {w[:-1] if w.endswith("s") and len(w) > 3 and not w.endswith("ss") else w for w in words}
    return frozenset(w for w in words if w and w not in STOPWORDS and w not in NOT_VALUE_WORDS)


def _trim(value: str) -> str:
    """The value phrase up to where the clause moves on ("Osaka for good" -> "Osaka")."""
    value = _VALUE_STOP.sub("", " " + value.strip()).strip()
    return re.sub(r"^(?:a|an|the|my|our|some)\s+", "", value, flags=re.IGNORECASE).strip(" .!?\"'")


def _place(value: str) -> frozenset[str]:
    """A place is a name: its capitalised words ("Osaka", "New York"); nothing when there is none."""
    match = _CAPITALISED.search(value)
    return _content(match.group(0)) if match else frozenset()


def _thing(value: str) -> frozenset[str]:
    return _content(_trim(value))


def _vehicle(value: str) -> frozenset[str]:
    """A make and model ("Honda Civic"), without its colour: "blue Civic" and "Civic" are one car."""
    words = [w for w in _WORD.findall(_trim(value)) if w.lower() not in _COLOURS]
    return _content(" ".join(words))


def is_vehicle(value: str) -> bool:
    words = [w.lower() for w in _WORD.findall(value)]
    return bool(words) and (words[0] in _CAR_MAKES or any(re.fullmatch(_VEHICLE_NOUN, w) for w in words))


# -er/-or/-ant nouns that name a relation to a place, not a job there.
_NOT_OCCUPATIONS = frozenset(
    "member members customer customers user users volunteer volunteers subscriber subscribers passenger passengers "
    "visitor visitors regular regulars patient patients guest guests fan fans client clients resident residents "
    "owner owners partner partners player players supporter supporters donor donors shareholder shareholders".split()
)


def _occupation(value: str) -> frozenset[str]:
    value = _trim(re.split(r"\s+(?:at|for|with|in)\s+", value, maxsplit=1)[0])
    words = _WORD.findall(value)[:4]
    # The role ends at its last occupation-like word ("nurse last spring" -> "nurse").
    last = max((i for i, w in enumerate(words) if _OCCUPATION_SUFFIX.search(w) and w.lower() not in _NOT_OCCUPATIONS), default=-1)
    return _content(" ".join(words[: last + 1])) if last >= 0 else frozenset()


def _org(value: str) -> frozenset[str]:
    """A name ("Acme Corp"), or "the <place>" ("the library"): the first capitalised words or
    the noun phrase after "the"."""
    value = value.strip()
    match = _CAPITALISED.match(value)
    if match:
        return _content(match.group(0))
    the = re.match(r"^the\s+([a-z][\w-]*(?:\s+[a-z][\w-]*)?)\b", value)
    return _content(_trim(the.group(1))) if the else frozenset()


@dataclass(frozen=True)
class _Frame:
    attribute: str
    pattern: re.Pattern[str]
    read: Callable[[str], frozenset[str]]
    # "bought a <X>", "my <X> is": a vehicle only when X is one.
    needs_vehicle: bool = False
    # "Porto has been home": the value leads the clause, the person is the speaker.
    value_first: bool = False
    # A mention, not an assertion ("our flat in X", "the nurse role"): it restates, never updates.
    firm: bool = True


def _frame(
    attribute: str,
    pattern: str,
    read: Callable[[str], frozenset[str]],
    needs_vehicle: bool = False,
    value_first: bool = False,
    firm: bool = True,
) -> _Frame:
    return _Frame(attribute, re.compile(pattern, re.IGNORECASE), read, needs_vehicle, value_first, firm)


_V = r"(?P<v>.+)"
_ROLE_AT = r"(?P<v>[a-z][\w-]*(?:\s+[a-z][\w-]*){0,2})\s+(?:at|for|with)\s+(?-i:[A-Z])"
# Case-sensitive inside case-insensitive frames: a name starts with a capital.
_CAP_V = r"(?P<v>(?-i:[A-Z])[\w&'.-]*(?:\s+(?-i:[A-Z0-9&])[\w&'.-]*)*)"
_FRAMES: tuple[_Frame, ...] = (
    # residence
    _frame("residence", rf"\b(?:live|lives|living|reside|resides|residing|settled|based|stationed|staying)\s+(?:now\s+)?(?:here\s+)?in\s+{_V}", _place),
    _frame("residence", rf"\b(?:moved|relocated|relocating|settled)\s+(?:back\s+|over\s+|down\s+|out\s+)?(?:to|in)\s+{_V}", _place),
    _frame("residence", rf"\b(?:moved|moving|relocated)\s+(?:in)?to\s+(?:a|an|the|our|my)\s+(?:new\s+)?(?:place|home|house|apartment|flat|condo)\s+in\s+{_V}", _place),
    _frame("residence", rf"\b{WHOSE}\s+(?:new\s+)?(?:place|home|house|apartment|flat|condo)\s+is\s+(?:now\s+|still\s+)?in\s+{_V}", _place),
    _frame("residence", rf"\b{WHOSE}\s+(?:new\s+)?(?:place|home|house|apartment|flat|condo)\s+in\s+{_V}", _place, firm=False),
    _frame("residence", rf"\b{WHOSE}\s+(?:home|home base|base)\s+(?:is|'s|remains)\s+(?:now\s+|still\s+)?(?:in\s+)?{_V}", _place),
    _frame("residence", rf"\bcalls?\s+{_CAP_V}\s+home\b", _place),
    _frame("residence", rf"^{_CAP_V}\s+(?:is|has been|has become|feels like)\s+(?:now\s+|still\s+)?home\b(?:\s+(?:to|for)\s+{WHO})?", _place, value_first=True),
    _frame("residence", rf"^{_CAP_V}\s+(?:is|has become|remains)\s+(?:now\s+|still\s+)?where\s+{WHO}\s+(?:live|lives|call home|calls home|reside|resides|am based|'m based|is based|are based|'re based|stay|stays|settled)\b", _place),
    _frame("residence", rf"^{_CAP_V}\s+(?:is|has become|remains)\s+(?:now\s+|still\s+)?{WHOSE}\s+(?:new\s+)?(?:home|base|hometown)\b", _place),
    # occupation and employer
    _frame("occupation", rf"\b(?:work|works|working|employed|hired|started|start|serving|serve|serves|job|position|role|day|career)\s+as\s+{_V}", _occupation),
    _frame("occupation", rf"\b(?:hired|took\s+on|employs|employed|promoted)\s+{WHO}\s+(?:on\s+)?(?:as|to)\s+{_V}", _occupation),
    _frame("occupation", rf"\bpromoted\s+to\s+{_V}", _occupation),
    _frame("occupation", rf"\b(?:hired|employ\w*|took\s+(?:me|us)\s+on|taken\s+on|job|jobs|work|works|working|role|position|career|started|starting|began|joined|day)\b.*?\bas\s+an?\s+{_V}", _occupation),
    _frame("occupation", rf"\b(?:the|my)\s+(?P<v>[a-z][\w-]*(?:\s+[a-z][\w-]*){{0,2}})\s+{_ROLE_NOUN}\b", _occupation, firm=False),
    _frame("occupation", r"^(?:i'm|i am|we're|we are)\s+(?:now\s+|still\s+)?(?:an?\s+)(?P<v>[a-z][\w-]*(?:\s+[a-z][\w-]*){0,2})$", _occupation),
    # "<person> is a nurse at Mercy Hospital": a role at an organisation.
    _frame("occupation", rf"\b(?:is|am|'m|are)\s+(?:now\s+|still\s+)?an?\s+{_ROLE_AT}", _occupation),
    _frame("employer", r"\b(?:work|works|working)\s+(?:now\s+)?(?:at|for)\s+(?P<v>(?:the\s+)?.+)", _org),
    _frame("employer", rf"\b(?:employed|hired)\s+(?:at|by)\s+{_CAP_V}", _org),
    _frame("employer", r"\b(?:job|position|role|day|internship)\s+(?:is\s+|as\s+.+?\s+)?(?:now\s+)?(?:at|with)\s+(?P<v>(?:the\s+)?.+)", _org),
    _frame("employer", rf"\bas\s+an?\s+.+?\s+(?:at|for|with)\s+{_CAP_V}", _org),
    _frame("employer", rf"\b(?:is|am|'m|are)\s+(?:now\s+|still\s+)?an?\s+(?P<role>[a-z][\w-]*(?:\s+[a-z][\w-]*){{0,2}})\s+(?:at|for|with)\s+{_CAP_V}", _org),
    _frame("employer", rf"^{_CAP_V}\s+(?:just\s+)?(?:hired|employs|took\s+on|took)\s+{WHO}\b", _org),
    _frame("employer", rf"\b(?:joined|still at|now at|started at)\s+{_CAP_V}", _org),
    # vehicle
    _frame("vehicle", rf"\b(?:drive|drives|driving)\s+(?:a|an|the|my)\s+{_V}", _vehicle),
    _frame("vehicle", rf"\b(?:bought|got|purchased|leased|picked up)\s+(?:myself\s+)?(?:a|an)\s+(?:new\s+|used\s+)?{_V}", _vehicle, needs_vehicle=True),
    _frame("vehicle", rf"\b{WHOSE}\s+(?:new\s+)?(?:car|truck|ride|vehicle)\s+is\s+(?:now\s+)?(?:a|an)\s+{_V}", _vehicle),
    _frame("vehicle", rf"^{WHOSE}\s+(?:new\s+)?{_CAP_V}\s+(?:is|has|needs|gets)\b", _vehicle, needs_vehicle=True),
    # software and services: what a thing is written in, runs on, listens on
    _frame("language", rf"\b(?:written|built|implemented|coded)\s+(?:entirely\s+|mostly\s+)?in\s+{_CAP_V}", _org),
    _frame("port", r"\b(?:runs|running|listens|listening|served|serves|exposed|available)\s+on\s+port\s+(?P<v>\d+)", _thing),
    _frame("hosting", rf"\b(?:deployed|deploy|deploys|hosted|host|hosts|runs|running)\s+(?:on|to)\s+{_CAP_V}", _org),
    # experience: "I've used X", "I've never integrated X" (many values; only a denial of one counts)
    _frame("did", r"\b(?:have|'ve|has)\s+(?:never\s+|not\s+|n't\s+)?(?:ever\s+)?(?:used|written|built|implemented|integrated|worked with|tried|set up|deployed|configured|installed|been to|visited|met)\s+(?:any\s+|a\s+|an\s+|the\s+)?(?P<v>.+)", _thing),
    _frame("did", r"^(?:i|we|(?-i:[A-Z])[\w-]+)\s+(?:already\s+|finally\s+|just\s+)?(?:used|wrote|built|implemented|integrated|tried|set up|deployed|configured|installed|visited|met)\s+(?:a\s+|an\s+|the\s+)?(?P<v>.+)", _thing),
    # partner
    _frame("partner", rf"\b(?:married|engaged)\s+to\s+{_CAP_V}", _org),
    _frame("partner", rf"\b(?:dating|seeing)\s+{_CAP_V}", _org),
)
_MY_PARTNER = re.compile(
    rf"^(?:my|our)\s+(?:boyfriend|girlfriend|husband|wife|partner|fianc[eé]e?|spouse)(?:'s name)?\s+(?:is\s+)?{_CAP_V}",
    re.IGNORECASE,
)
_FAVORITE_FRAMES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bfavou?rite\s+(?P<cat>[a-z]+(?:\s+[a-z]+)?)\s+(?:is|are|'s|has to be|remains|has become|would be)\s+(?:now\s+|still\s+|definitely\s+)?(?P<v>.+)",
        rf"^(?P<v>.+?)\s+(?:is|are|remains|has become|'s)\s+(?:still\s+|now\s+|definitely\s+)?{WHOSE}\s+(?:new\s+|all-time\s+|absolute\s+)?(?:favou?rite|number one|number 1|no\. ?1|top|go-to)\b\s*(?P<cat>[a-z]+)?",
        r"^(?:nothing|no\s+(?P<cat>[a-z]+))\s+(?:beats|tops|compares to|comes close to)\s+(?P<v>.+)",
        r"\b(?:love|like|enjoy|prefer)\s+(?P<v>.+?)\s+(?:more than anything|above all|above everything|the most|best of all)\b",
        r"^(?P<v>.+?)\s+(?:is|are)\s+(?:the best|my favou?rite)(?:\s+(?!now\b|ever\b|today\b|again\b)(?P<cat>[a-z]+))?(?:\s+now|\s+ever|\s+today)?$",
    )
)
_FAVOURITE_WORD = re.compile(r"\bfavou?rite\b", re.IGNORECASE)
_ONE_OF = re.compile(r"\bone of (?:my|our|the)\b", re.IGNORECASE)
_PRONOUN_VALUE = re.compile(r"^(?:it|this|that|they|these|those|you|he|she|which|what|one|mine)$", re.IGNORECASE)


# Attributes of a thing (a service, a codebase), never of the person who talks about it.
_THING_ATTRIBUTES = frozenset(["port", "hosting", "language"])


def _clauses(text: str) -> Iterable[tuple[str, bool, bool]]:
    """(clause, sentence is a question, clause opens its sentence) for each clause of the text."""
    for sentence in _SENTENCE.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        question = sentence.endswith("?") or bool(_QUESTION_START.match(sentence))
        opening = True
        for clause in _CLAUSE.split(sentence):
            clause = clause.strip(" .!?;\"'()")
            if clause:
                yield clause, question, opening
                opening = False


def split_speaker(text: str, persons: Iterable[str] = ()) -> tuple[str | None, str]:
    """("Alice", "I live in Boston.") for "Alice said: I live in Boston."; else (first person, text)."""
    match = _SAID.match(text)
    if match:
        return match.group("name").strip(), text[match.end() :]
    return next(iter(persons), None), text


@lru_cache(maxsize=65_536)
def _extract(text: str, speaker: str | None) -> tuple[tuple[Statement, str | None, str], ...]:
    """Statements with their favourite category noun (or None) and value phrase, before categorising."""
    out: list[tuple[Statement, str | None, str]] = []
    subject: str | None = None
    named_alone = False  # the subject is a name set off by a comma: it holds for its sentence only
    context: str | None = None  # "For Atlas, ...": what the sentence's "the <attribute>" belongs to
    for clause, question, opening in _clauses(text):
        if opening and named_alone:
            subject, named_alone = None, False
        if opening:
            context = None
        if question:
            continue
        leading = _CONTEXT.match(clause) if opening else None
        if leading and qualifier(leading.group("qual")):
            context = qualifier(leading.group("qual"))
            continue
        partner = _MY_PARTNER.match(clause)
        if partner and speaker and not _NOT_CURRENT.search(clause):
            value = _content(partner.group("v"))
            if value:
                out.append((Statement(speaker.lower(), "partner", value, bool(_NEGATED.search(clause))), None, partner.group("v")))
            subject = speaker.lower()
            continue
        subject, body = subject_of(clause, speaker, subject, opening)
        named_alone = named_alone or (not body and subject is not None and bool(BARE_NAME.match(clause)))
        preference = _PREFERENCE_WOULD.search(body)
        if preference:
            who = person_of(preference, speaker, subject)
            value = _thing(preference.group("v"))
            if value and who:
                out.append((Statement(who, "favorite", value), None, preference.group("v")))
            continue
        if _NOT_CURRENT.search(body):
            continue
        negated = bool(_NEGATED.search(body))
        found = len(out)
        for frame in _FRAMES:
            match = frame.pattern.search(body)
            if not match or (subject is None and frame.attribute not in _THING_ATTRIBUTES):
                continue
            raw = match.group("v")
            if frame.attribute == "vehicle" and frame.needs_vehicle and not is_vehicle(_trim(raw)):
                continue
            if match.groupdict().get("role") is not None and not _occupation(match.group("role")):
                continue  # "a member at the gym" is no job there
            if frame.attribute != "did" and _PAST.search(body):
                continue  # the past: "I lived in Rome" says nothing about now
            if frame.attribute in _THING_ATTRIBUTES:
                who = thing_before(body, match.start())
            else:
                who = person_of(match, speaker, (speaker.lower() if speaker else None) if frame.value_first else subject)
            value = frame.read(raw)
            if who and value:
                denial = negated and bool(_DENIAL.search(body))
                firm = frame.firm and not vague(who)
                out.append((Statement(who, frame.attribute, value, negated, denial=denial, firm=firm), None, raw))
        if _ONE_OF.search(body) or subject is None:
            continue  # "one of my favourites": not the one
        if len(out) == found and not _FAVOURITE_WORD.search(body):
            generic = _generic(clause, speaker, subject, negated, context)
            if generic is not None:
                out.append((generic, None, ""))
                continue
        for pattern in _FAVORITE_FRAMES:
            match = pattern.search(body)
            if not match:
                continue
            if pattern is _FAVORITE_FRAMES[-1] and not match.group("cat") and not _FAVOURITE_WORD.search(text):
                continue  # a bare "X is the best" is praise, unless the sentence talks of favourites
            raw = match.group("v")
            value = _thing(raw)
            if not value or _PRONOUN_VALUE.match(_trim(raw)) or len(value) > 4:
                continue
            category = match.groupdict().get("cat")
            who = person_of(match, speaker, subject)
            if who:
                out.append((Statement(who, "favorite", value, negated, firm=not vague(who)), category, raw))
            break
    return tuple(out)


# What a "the <attribute>" belongs to, named after "of/for/on" or before the clause ("For Atlas, the
# deploy target is ..."): a name, an identifier ("web-frontend", "svc_2") or "the <name> <kind noun>".
_QUALIFIER = r"(?:[\w.-]+\s+){0,2}?[\w.-]+"
_NAME_LIKE = re.compile(r"(?-i:[A-Z])|[-_\d]")
_CONTEXT = re.compile(
    rf"^(?:for|in|on|within|inside|regarding|about)\s+(?:the\s+)?(?P<qual>{_QUALIFIER})$", re.IGNORECASE
)
_TRAILING_QUALIFIER = re.compile(rf"\s+(?:for|of|on)\s+(?:the\s+)?(?P<qual>{_QUALIFIER})\s*[.!?]*$", re.IGNORECASE)


def qualifier(phrase: str | None) -> str | None:
    """The thing a qualifier phrase names ("billing-service", "the Atlas project"), None when it names
    no thing ("for now", "for a while", "of mine")."""
    if not phrase:
        return None
    words = [w for w in phrase.split() if w.lower() not in STOPWORDS and w.lower() not in NOT_VALUE_WORDS]
    if not words or not (_NAME_LIKE.search(" ".join(words)) or (len(words) > 1 and words[-1].lower() in _KIND_NOUNS)):
        return None
    return " ".join(words).lower()


# "my/our/Hana's/the <attribute> is <value>": English's own attribute-value sentence. The
# value must look like one (a name, a number, an address, "a/the <noun>"), not a passing
# state ("my knee is sore", "the weather is nice").
_GENERIC = re.compile(
    rf"^(?P<who>my|our|the|{NAME}'s|{NAME}\u2019s)\s+(?:new\s+|current\s+|main\s+)?"
    r"(?P<attr>[a-z][\w'-]*(?:\s+[a-z][\w-]*){0,2}?)"
    rf"(?:\s+(?:of|for|on)\s+(?:the\s+)?(?P<qual>{_QUALIFIER}))?\s+(?P<verb>is|are|remains|is now|has become|is set to|was changed to|got changed to|changed to|moved to)\s+"
    r"(?:now\s+|still\s+|currently\s+)?(?P<v>.+)$",
    re.IGNORECASE,
)
# "Sam is my manager", "8080 is the port": the value first.
_GENERIC_INVERTED = re.compile(
    rf"^(?P<v>(?-i:[A-Z0-9])[\w.@:/&'-]*(?:\s+(?-i:[A-Z0-9&])[\w.@:/&'-]*)*)\s+(?:is|remains|is now)\s+(?:still\s+|now\s+)?"
    rf"(?P<who>my|our|the|{NAME}'s)\s+(?:new\s+|current\s+|main\s+)?(?P<attr>[a-z][\w-]*(?:\s+[a-z][\w-]*){{0,2}}?)"
    rf"(?:\s+(?:of|for|on)\s+(?:the\s+)?(?P<qual>{_QUALIFIER}))?$",
    re.IGNORECASE,
)
_TRANSIENT = frozenset(
    "day days week weekend morning afternoon evening night trip vacation holiday weather mood head back knee leg arm "
    "stomach life plan plans idea ideas question questions point problem problems issue issues goal goals guess "
    "feeling thing things reason advice answer bet best worst fault turn pleasure honor hope dream wish".split()
)
# Words that stand for a noun said before ("the new one", "the other"): what they name is unknown here.
_PRO_FORMS = frozenset("one ones other others former latter same rest lot bit part kind sort type".split())
_VALUE_LIKE = re.compile(r"(?-i:[A-Z])|\d|@|/|\.\w|^(?:an?|the)\s+[a-z]", re.IGNORECASE)
_NOT_A_VALUE_START = re.compile(
    r"^(?:in|on|at|to|for|with|from|about|so|very|really|pretty|quite|too|kind of|a bit|a little|not|also|just|"
    r"going|getting|doing|being|like|that|what|how|why|when|where|who|which|it|this|one|all|always|never|"
    r"[a-z]+ing\b|[a-z]+ed\b)",
    re.IGNORECASE,
)


def _generic(
    clause: str, speaker: str | None, subject: str | None, negated: bool, context: str | None = None
) -> Statement | None:
    """A `has:<attribute>` statement from "my <attribute> is <value>" or "<value> is my <attribute>".

    "The <attribute> of/for X is ..." and "the <attribute> is ... for X" are X's attribute, and so is
    a bare "the <attribute>" in a sentence that opened with "For X," (`context`); an unqualified
    "the <attribute>" is the owner's (`*`). A qualifier on "my <attribute>" keeps it apart ("my role on
    X" and "my role on Y" are two attributes)."""
    match = _GENERIC.match(clause) or _GENERIC_INVERTED.match(clause)
    if not match:
        return None
    attr_words = [w for w in match.group("attr").lower().split() if w not in NOT_VALUE_WORDS]
    raw = match.group("v").strip(" .!?\"'")
    qual = qualifier(match.group("qual"))
    trailing = _TRAILING_QUALIFIER.search(raw) if match.re is _GENERIC else None
    if trailing and qualifier(trailing.group("qual")) and not qual:
        qual, raw = qualifier(trailing.group("qual")), raw[: trailing.start()]
    place = re.match(r"^(?:in|on|at)\s+(?=\S*(?-i:[A-Z0-9]))", raw, re.IGNORECASE)
    raw = _trim(raw[place.end() :] if place else raw)  # "my birthday is on June 3", "the server is at 10.0.0.5"
    if not attr_words or attr_words[-1] in _TRANSIENT or attr_words[-1] in _PRO_FORMS:
        return None
    if re.fullmatch(HUMAN_RELATIONS, attr_words[-1]) and not re.match(r"(?-i:[A-Z])", raw):
        return None  # "my sister is a nurse" is the sister's job; "my manager is Sam" names him
    if not raw or _NOT_A_VALUE_START.match(raw) or not _VALUE_LIKE.search(raw) or len(raw.split()) > 6:
        return None
    value = _content(raw) or frozenset([raw.lower()])
    who = match.group("who").lower()
    # "the deadline is ...": the owner's own world (consolidation is per owner), unless qualified
    if who == "the":
        person, qual = qual or context or "*", None
    else:
        person = person_of(match, speaker, subject)
    if not person:
        return None
    plural = match.group("v") and match.groupdict().get("verb", "is").lower() == "are"
    attribute = ("has*:" if plural else "has:") + " ".join(attr_words) + (f" of {qual}" if qual else "")
    return Statement(person, attribute, value, negated, firm=not vague(person))


# The extractive compressor's tool units: "agent called tool get_config with service=billing; result: port=6379, replicas=2".
_TOOL_UNIT = re.compile(r"^.{1,80}? called tool (?P<tool>[\w.:-]+)(?: with (?P<args>[^;]*))?; result: (?P<result>.+)$")
_FIELD = re.compile(r"(?P<k>[\w.-]+)=(?P<v>[^,;]+)")


def tool_statements(text: str) -> list[Statement]:
    """A tool called with the same arguments is one subject; each `field=value` of its result is an
    attribute, so a changed field of the same call is an update and the same fields a restatement."""
    match = _TOOL_UNIT.match(text.strip())
    if not match:
        return []
    args = (match.group("args") or "").strip()
    subject = f"tool {match.group('tool')}({args})".lower()
    # One argument names what the call is about ("service=billing"): its fields are that thing's
    # attributes, as a sentence would state them. Several (service and environment) name it only together.
    arguments = list(_FIELD.finditer(args))
    about = [canonical_subject(arguments[0].group("v").strip())] if len(arguments) == 1 else []
    about = [a for a in about if a and not a.replace(".", "").isdigit()]
    fields = [
        _with_aliases(Statement(subject, f"result:{f.group('k').lower()}", frozenset([f.group("v").strip().lower()])), about)
        for f in _FIELD.finditer(match.group("result"))
    ]
    # A result without fields ("@olga", "412 passed") is one value of the call.
    return fields or [Statement(subject, "result", frozenset([match.group("result").strip().lower()]))]


def is_tool_unit(text: str) -> bool:
    return bool(_TOOL_UNIT.match(text.strip()))


def extract(text: str, persons: Iterable[str] = (), categorize: Categorize | None = None) -> list[Statement]:
    """The statements of a unit's text ("Alice said: ..." or third person, or a tool call), deduplicated.

    `persons` gives the speaker when the text has no "X said:" prefix (its first person).
    """
    tool = tool_statements(text)
    if tool:
        return tool
    speaker, body = split_speaker(text, persons)
    out: dict[tuple[str, str, frozenset[str]], Statement] = {}
    for statement, category_noun, raw in _extract(body, speaker):
        if statement.attribute == "favorite":
            category = favorite_category(category_noun)
            guess = None if category or categorize is None else categorize(_trim(raw))
            statement = Statement(
                statement.subject, "favorite", statement.value, statement.negated,
                category=category, guess=guess, firm=statement.firm,
            )
        statement = _with_aliases(statement)
        seen = out.setdefault((statement.subject, statement.attribute, statement.value), statement)
        if statement.firm and not seen.firm:  # said twice, once as a plain assertion: it is one
            out[(statement.subject, statement.attribute, statement.value)] = statement
    return list(out.values())


def favorite_category(noun: str | None) -> str | None:
    """The category a favourite's noun names ("dish" -> food; "food", "comfort food" -> food)."""
    if not noun:
        return None
    noun = noun.lower().strip()
    for candidate in (noun, noun.split()[-1], noun.split()[0]):
        if candidate in _FAVORITE_CATEGORY_NOUNS:
            return _FAVORITE_CATEGORY_NOUNS[candidate]
    return noun.split()[-1]


def _same_kind(a: Statement, b: Statement, same_value: bool) -> bool:
    """Favourites of one category: named alike, or (for the same value) one without a name, or
    (for an update) one's category the other's guess."""
    if a.attribute != "favorite":
        return True
    if a.category and b.category:
        return a.category == b.category
    if same_value:
        return True
    return (a.category or a.guess) == (b.category or b.guess)


# The version of what `extract` and `keys` make of a unit's text, recorded per tenant with the keys
# stored in `unit_statements` (`stores/sql/statement_keys.py`, migration 0011). Bump it whenever a
# change gives a stored unit other keys (a new frame, alias or canonical form): `memory-service
# doctor` then reports stores keyed by an older derivation, and `memory-service consolidate
# --rebuild-statements` re-derives their keys. 0 is "written before versions were recorded".
STATEMENT_KEYS_VERSION = 1


# The longest key `unit_statements.key` holds (String(300)). A tool call's subject carries all its
# arguments, so a longer key keeps its head and ends in a digest of the whole: still one key per
# statement, the same on every write and lookup, and never a failed insert on PostgreSQL.
MAX_KEY_CHARS = 300
_DIGEST_CHARS = 16


def storable_key(key: str) -> str:
    if len(key) <= MAX_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:_DIGEST_CHARS]
    return f"{key[: MAX_KEY_CHARS - _DIGEST_CHARS - 1]}#{digest}"


def keys(statements: Iterable[Statement]) -> list[str]:
    """The distinct `subject|attribute` keys, aliases included (`Statement.also`): what units are
    matched on, each at most `MAX_KEY_CHARS` long (`storable_key`)."""
    return sorted({storable_key(k) for s in statements for k in s.all_keys})


# Head nouns that name what kind of thing a name is: "the billing service" is "billing".
_KIND_NOUNS = frozenset(
    "project service repo repository app application codebase module package library team environment env".split()
)
# Frame attributes a generic "has:<noun>" or a tool field can name ("my partner is X", "port=8080").
_NAMED_ATTRIBUTES = {
    "partner": "partner", "employer": "employer", "job": "occupation", "occupation": "occupation",
    "home": "residence", "port": "port", "language": "language",
}


def canonical_subject(subject: str) -> str:
    """A thing's name without punctuation, article or kind noun: "the billing-service" -> "billing"."""
    words = re.sub(r"[-_]+", " ", subject.lower()).split()
    if words and words[0] in {"the", "our", "my"} and len(words) > 1:
        words = words[1:]
    if len(words) > 1 and words[-1] in _KIND_NOUNS:
        words = words[:-1]
    return " ".join(words)


def canonical_attribute(attribute: str) -> str:
    """"has:port", "result:port" and "port" are one attribute; "has:partner" is the partner frame."""
    kind, _, name = attribute.partition(":")
    if kind not in {"has", "result"} or not name:
        return attribute
    name = re.sub(r"[-_]+", " ", name).strip()
    return _NAMED_ATTRIBUTES.get(name, f"has:{name}")


def _with_aliases(statement: Statement, subjects: Iterable[str] = ()) -> Statement:
    attribute = canonical_attribute(statement.attribute)
    names = list(subjects) if statement.is_tool else [canonical_subject(statement.subject)]
    also = tuple(k for k in dict.fromkeys(f"{n}|{attribute}" for n in names if n) if k != statement.key)
    return replace(statement, also=also) if also else statement


def _pairable(a: Statement, b: Statement, key: str) -> bool:
    """Two calls of tools pair on their own key only: one call's argument alias ("billing|port") must
    not make two calls with other arguments (another environment, another service) one subject."""
    return not (a.is_tool and b.is_tool) or a.key == b.key == key


def other_subjects(a: Iterable[Statement], b: Iterable[Statement]) -> bool:
    """Both units state one attribute, but of two subjects and never of the same one ("the billing
    service listens on port 80" / "ledger's port is 81"): whatever else they share, neither updates the
    other. The speaker's own statements ("*", first person) are not a subject a thing can be told from."""
    def by_attribute(sts: Iterable[Statement]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for s in sts:
            if s.subject != "*":
                out.setdefault(canonical_attribute(s.attribute), set()).update(k.split("|", 1)[0] for k in s.all_keys)
        return out

    first, second = by_attribute(a), by_attribute(b)
    common = first.keys() & second.keys()
    return bool(common) and all(not (first[attr] & second[attr]) for attr in common)


@dataclass(frozen=True)
class Comparison:
    """What two units' statements of the same keys say about the pair."""

    shared: int  # keys both state
    conflicts: int  # single-valued keys with different values (or a value negated), both sides firm
    agreements: int  # keys with the same value
    contradictions: int = 0  # the same value, one side denying it ever held ("never"): neither is newer truth

    @property
    def restates(self) -> bool:
        return self.shared > 0 and self.conflicts == 0 and self.agreements == self.shared

    @property
    def updates(self) -> bool:
        return self.conflicts > 0 and self.contradictions == 0

    @property
    def contradicts(self) -> bool:
        return self.contradictions > 0


def compare(old: Iterable[Statement], new: Iterable[Statement]) -> Comparison:
    """Compare two units' statements key by key.

    A key stated with the same value by both (and neither negated) agrees; a single-valued key
    with different values, or the same value negated by one of them, conflicts when both
    statements are firm. A mention or a vague subject ("my friend") can restate but not update.
    """
    by_key_old: dict[str, list[Statement]] = {}
    for s in old:
        for k in s.all_keys:
            by_key_old.setdefault(k, []).append(s)
    by_key_new: dict[str, list[Statement]] = {}
    for s in new:
        for k in s.all_keys:
            by_key_new.setdefault(k, []).append(s)
    shared = conflicts = agreements = contradictions = 0
    seen: set[tuple[int, int]] = set()  # a pair of statements counts once, under its first shared key
    for key in sorted(by_key_old.keys() & by_key_new.keys()):
        pairs = [
            (a, b) for a in by_key_old[key] for b in by_key_new[key]
            if (id(a), id(b)) not in seen and _pairable(a, b, key)
        ]
        if not pairs:
            continue
        seen.update((id(a), id(b)) for a, b in pairs)
        if key.endswith("|did"):
            # Experiences are many: agreeing or differing ones say nothing; a denial of one is a contradiction.
            if any(same_value(a, b) and a.negated != b.negated and (a.denial or b.denial) for a, b in pairs):
                shared += 1
                contradictions += 1
            continue
        same = [(a, b) for a, b in pairs if same_value(a, b) and _same_kind(a, b, True)]
        if same:
            shared += 1
            if any(a.negated != b.negated and (a.denial or b.denial) for a, b in same):
                contradictions += 1
            elif any(a.negated != b.negated and a.firm and b.firm for a, b in same):
                conflicts += 1
            elif not any(a.negated != b.negated for a, b in same):
                agreements += 1
            continue
        kin = [(a, b) for a, b in pairs if _same_kind(a, b, False)]
        if not kin:
            continue  # favourites of two categories: nothing shared
        shared += 1
        if any(not a.negated and not b.negated and a.single_valued and a.firm and b.firm for a, b in kin):
            conflicts += 1
    return Comparison(shared, conflicts, agreements, contradictions)
