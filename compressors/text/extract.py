"""Pure text helpers for the extractive compressor: sentences, filler, keywords, persons, entities.

Everything here is regex based and cheap (no NLP library, no model), so that the
extractive baseline stays well above a thousand events per second on one core.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from compressors.text.words import MONTH_ABBREVIATIONS, MONTH_NAMES, STOPWORDS, WEEKDAY_ABBREVIATIONS, WEEKDAY_NAMES

_ANY_DIGIT = re.compile(r"\d")

# --------------------------------------------------------------------------- sentences

_ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "eg", "ie", "approx", "fig", "inc", "ltd", "corp", "mt", "ft", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"]
)
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])[\"'\u201d\u2019)]*\s+")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]+|\d{1,2}[.)])\s+")
_LAST_WORD = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")


def split_sentences(text: str) -> list[str]:
    """Split on sentence punctuation followed by space and on line breaks.

    A period after a known abbreviation ("Dr.", "e.g.") or a lone initial ("J.")
    does not end a sentence; decimals and versions ("3.12") never do since no
    space follows their dot.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        if not line:
            continue
        pending = ""
        for piece in _SENTENCE_END.split(line):
            piece = piece.strip()
            if not piece:
                continue
            pending = f"{pending} {piece}" if pending else piece
            # only the tail can hold the abbreviation (and a search over all of it is quadratic)
            last = _LAST_WORD.search(pending[-24:]) if pending.endswith(".") else None
            if last is not None:
                word = last.group(1).lower()
                initial = len(word) == 1 and last.group(1) not in ("I", "A")
                if word in _ABBREVIATIONS or (initial and last.group(1).isupper()):
                    continue
            sentences.append(pending)
            pending = ""
        if pending:
            sentences.append(pending)
    return sentences


# --------------------------------------------------------------------------- filler

# Phrases that, alone (possibly with names and a few softeners), carry no information.
_FILLER_PHRASES: tuple[tuple[str, ...], ...] = tuple(
    sorted(
        (
            tuple(p.split())
            for p in (
                "hi", "hello", "hey", "hiya", "howdy", "yo", "greetings", "good morning", "good afternoon",
                "good evening", "good night", "goodnight", "morning", "evening", "night", "bye", "goodbye",
                "bye bye", "see you", "see ya", "see you later", "see you soon", "see you around", "later",
                "talk soon", "talk later", "talk to you later", "talk to you soon", "catch you later",
                "take care", "have a good one", "have a good day", "have a great day", "have a nice day",
                "have a good night", "have a great weekend", "have a good weekend", "have fun", "cheers",
                "thanks", "thank you", "thx", "ty", "thanks a lot", "many thanks", "thanks for sharing",
                "thank you for sharing", "thanks for asking", "thank you for asking", "thanks for that",
                "thanks for the support", "thank you for the support", "appreciate it", "i appreciate it",
                "much appreciated", "you're welcome", "youre welcome", "welcome", "no problem", "no prob",
                "no worries", "np", "anytime", "my pleasure", "of course", "ok", "okay", "k", "kk", "okey",
                "alright", "all right", "sure", "sure thing", "yes", "yeah", "yep", "yup", "ya", "no", "nope",
                "nah", "right", "true", "indeed", "exactly", "absolutely", "definitely", "totally", "agreed",
                "got it", "gotcha", "i see", "i know", "i understand", "makes sense", "that makes sense",
                "fair enough", "sounds good", "sounds great", "sounds fun", "sounds amazing",
                "sounds awesome", "sounds like fun", "sounds like a plan", "sounds like a good plan", "cool",
                "nice", "great", "awesome", "amazing", "wow", "whoa", "woah", "oh", "ohh", "ah", "ahh", "aw",
                "aww", "awww", "hmm", "hm", "mhm", "um", "uh", "er", "oops", "yay", "omg", "oh my god",
                "oh my gosh", "oh my", "wow that's", "that's great", "that's awesome", "that's amazing",
                "that's cool", "that's nice", "that's so cool", "that's wonderful", "that's fantastic",
                "that's good", "that's interesting", "that's sweet", "that's lovely", "that's true",
                "that's right", "that's fair", "good", "good to hear", "great to hear", "glad to hear",
                "nice to hear", "good to know", "great to know", "good for you", "congrats",
                "congratulations", "well done", "good job", "great job", "nice job", "love it", "love that",
                "i love that", "i love it", "me too", "same", "same here", "you too", "likewise",
                "how are you", "how are you doing", "how's it going", "hows it going", "how have you been",
                "how you doing", "what's up", "whats up", "sup", "what about you", "how about you",
                "what's up with you", "what's new", "what's new with you", "anything new", "how about yourself",
                "how was your day", "how's your day", "how's your week", "how's everything",
                "and you", "nice to meet you", "good to see you", "great to see you", "long time no see",
                "good luck", "best of luck", "keep it up", "keep going", "you got this", "go for it",
                "look", "look at this", "look at that", "check this out", "check it out", "here you go",
                "here it is", "here", "see", "ttyl", "brb", "gtg", "g2g", "xoxo", "xo",
                "null", "none", "nil", "success", "succeeded", "done", "ok done", "200", "200 ok", "n a",
                "na", "empty", "void", "undefined", "false",
            )
        ),
        key=len,
        reverse=True,
    )
)
_FILLER_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _phrase in _FILLER_PHRASES:  # longest first, as sorted above
    _FILLER_BY_FIRST.setdefault(_phrase[0], []).append(_phrase)
_FILLER_SOFTENERS = frozenset(
    ["you", "so", "much", "too", "very", "a", "lot", "again", "really", "all", "everyone", "everybody", "guys", "man", "dude", "buddy", "friend", "pal", "bro", "mate", "yall", "there", "and", "just", "then", "well", "both", "such", "the", "for", "it", "that", "this", "is", "was", "i'm", "im", "was", "lol", "haha", "hahaha", "hehe", "omg", "wow", "oh", "yes", "yeah", "sure"]
)
_LAUGH = re.compile(r"(?:(?:ha|he|hi|ho)h?){2,}|lo+l|lmf?ao+|rofl|xd+")
_NON_WORD = re.compile(r"[^\w\s'\u2019]+")
_WORDS = re.compile(r"[\w'\u2019]+")
_NAME_TOKEN = re.compile(r"^[A-Z][a-z'\u2019-]+$")


def _phrase_tokens(sentence: str) -> tuple[list[str], list[str]]:
    raw = _WORDS.findall(_NON_WORD.sub(" ", sentence.replace("\u2019", "'")))
    return raw, [t.lower() for t in raw]


def is_filler(sentence: str) -> bool:
    """True when a sentence carries nothing worth remembering.

    Greetings, thanks, acknowledgements, laughter, emoji or punctuation only, and
    empty tool output ("null", "{}", "OK"); a greeting with a name ("Hi Caroline!")
    and softeners ("thanks so much!") is still filler.
    """
    raw, low = _phrase_tokens(sentence)
    if not low:
        return True
    if len(low) > 12:
        return False
    matched = False
    names_allowed = False  # after "hey", "thanks"...; not after "I know" ("I know Python")
    i = 0
    while i < len(low):
        token = low[i]
        if _LAUGH.fullmatch(token):
            matched = names_allowed = True
            i += 1
            continue
        for phrase in _FILLER_BY_FIRST.get(token, ()):
            n = len(phrase)
            if tuple(low[i : i + n]) == phrase:
                matched = True
                names_allowed = phrase[0] != "i"
                i += n
                break
        else:
            if token in _FILLER_SOFTENERS:
                i += 1
                continue
            # a name after a greeting or thanks ("Hey Mel", "thanks Caroline") or before it ("Mel, thanks!")
            if (names_allowed or i == 0) and raw[i] != "I" and _NAME_TOKEN.match(raw[i]):
                i += 1
                continue
            return False
    return matched


_LEAD_WORD = (
    r"(?:wow,? that's \w+|oh wow|oh yeah|oh no|no way|thank you|hi|hey|hello|oh|ohh|wow|whoa|well|yeah|yes|"
    r"yep|ok|okay|alright|haha+|lol|thanks|aw+|ah+|hmm+|um+|so|sure|great|nice|cool|awesome)"
)
_LEADING_FILLER = re.compile(
    rf"^{_LEAD_WORD}(?:,?\s+{_LEAD_WORD})?"
    r"(?:\s+(?:so much|a lot|again|guys|all|everyone|there))?"
    r"(?-i:(?:,?\s+[A-Z][\w'\u2019-]*){0,2})\s*(?:[,!:;\u2014-]+|\.{1,3})\s+(?=\S)",
    re.IGNORECASE,
)
_EMOJI = re.compile(
    "[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200D\U000E0020-\U000E007F]+"
)
_TRAILING_NOISE = re.compile(
    r"(?:[\s,]+(?:(?:ha|he)h?(?:ha|he)+h?|lo+l|lmf?ao+|xd+|[:;]-?[)(DPp]))+(?=[\s.!?]*$)", re.IGNORECASE
)
_SPACES = re.compile(r"\s{2,}")


def clean_sentence(sentence: str) -> str:
    """Remove emoji, trailing laughter and a leading interjection ("Hey Mel, I ..." -> "I ...")."""
    text = _EMOJI.sub(" ", sentence)
    text = _TRAILING_NOISE.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    stripped = _LEADING_FILLER.sub("", text, count=1)
    if stripped != text and stripped:
        text = stripped[0].upper() + stripped[1:]
    return text


# --------------------------------------------------------------------------- keywords

_KEYWORD_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+#'\u2019.-]*[A-Za-z0-9+#]|[A-Za-z]")
_SENTENCE_START_BEFORE = re.compile(r"(?:^|[.!?:;\n]\s*|[\"(\u201c]\s*)$")


def _starts_sentence(text: str, start: int) -> bool:
    return _SENTENCE_START_BEFORE.search(text, max(0, start - 8), start) is not None


def _tokens(text: str) -> list[tuple[str, bool]]:
    """(lowercase token, capitalised mid-sentence) for each word, possessives removed."""
    out = []
    for m in _KEYWORD_TOKEN.finditer(text):
        head = m.group(0).replace("\u2019", "'").split("'", 1)[0].rstrip(".-")
        if not head:
            continue
        capital = head[0].isupper() and not _starts_sentence(text, m.start())
        out.append((head.lower(), capital))
    return out


def _is_content(token: str) -> bool:
    if token in STOPWORDS or len(token) < 3:
        return False
    if token.isdigit():
        return len(token) == 4  # years
    return True


def content_words(text: str) -> list[str]:
    """Lowercased content words in order (stop words, short words and small numbers removed)."""
    return [t for t, _ in _tokens(text) if _is_content(t)]


def extract_keywords(text: str, limit: int = 8) -> list[str]:
    """Content words ranked by frequency, proper-noun-ness, digits and length; ties keep text order."""
    scores: dict[str, float] = {}
    for token, capital in _tokens(text):
        if not _is_content(token):
            continue
        if token not in scores:
            scores[token] = min(len(token), 10) / 10.0  # dicts keep first-seen order for ties
        scores[token] += 1.0 + (0.5 if capital else 0.0) + (0.3 if _ANY_DIGIT.search(token) else 0.0)
    ranked = sorted(scores, key=lambda t: -scores[t])
    return ranked[:limit]


# --------------------------------------------------------------------------- persons and entities

_MONTHS = [*MONTH_NAMES, *MONTH_ABBREVIATIONS]
_DAYS = [*WEEKDAY_NAMES, *WEEKDAY_ABBREVIATIONS]
_NOT_NAMES = frozenset(
    _MONTHS
    + _DAYS
    + ["i", "god", "mom", "mum", "dad", "mother", "father", "grandma", "grandpa", "granny", "sister", "brother", "aunt", "uncle", "sir", "madam", "miss", "mister", "english", "spanish", "french", "german", "italian", "chinese", "japanese", "korean", "american", "british", "european", "african", "asian", "indian", "canadian", "mexican", "christmas", "easter", "halloween", "thanksgiving", "lgbtq", "lgbt", "internet", "tv", "wifi", "ai", "api", "ok", "okay", "yes", "no", "hello", "hi", "hey", "thanks", "thank", "wow", "oh", "lol", "haha", "omg", "python", "java", "javascript", "typescript", "rust", "golang", "linux", "windows", "mac", "macos", "ios", "android", "docker", "kubernetes", "github", "gitlab", "google", "amazon", "apple", "microsoft", "facebook", "instagram", "twitter", "youtube", "netflix", "spotify", "slack", "discord", "reddit", "whatsapp", "zoom", "iphone", "ipad", "street", "road", "avenue", "park", "lake", "river", "mountain", "mount", "city", "town", "state", "country", "university", "college", "school", "hospital", "church", "center", "centre", "museum", "library", "club", "team", "company", "beach", "island", "bay", "north", "south", "east", "west", "northern", "southern", "eastern", "western", "new", "old", "big", "little", "great", "grand", "san", "santa", "los", "las", "saint", "fort", "golden", "united", "royal", "national", "central", "general", "first", "last", "corp", "inc", "ltd", "llc", "co", "group", "labs", "studio", "studios", "bank", "foundation", "institute", "association", "paris", "london", "tokyo", "japan", "italy", "france", "spain", "germany", "china", "india", "canada", "mexico", "brazil", "america", "usa", "uk", "europe", "asia", "africa", "australia", "york", "california", "texas", "florida", "seattle", "boston", "chicago", "berlin", "rome", "madrid", "amsterdam", "hawaii", "alaska", "sweden", "norway", "ireland", "scotland", "england", "greece", "portugal"]
)
_NAME_WORD = r"[A-Z][a-z]+(?:[-'\u2019][A-Z][a-z]+)?"
_NAME_RUN = re.compile(rf"(?<![\w'\u2019-]){_NAME_WORD}(?: {_NAME_WORD})*(?![\w-])")
_NOT_PERSON_BEFORE = re.compile(r"\b(?:the|a|an|in|The|A|An|In)\s+$")


def extract_persons(text: str, known_names: Iterable[str] = ()) -> list[str]:
    """Known names found in the text, then capitalised name-like words that do not start a sentence.

    A run of two name-like words ("Jon Snow") is one person; three or more
    ("Golden Gate Bridge") is an entity, not a person. Words after "the", "a" or
    "in" are taken for places and things.
    """
    persons: list[str] = []
    seen: set[str] = set()
    for name in known_names:
        name = name.strip()
        if name and name.lower() not in seen and re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
            seen.add(name.lower())
            persons.append(name)
    for m in _NAME_RUN.finditer(text):
        words = m.group(0).split(" ")
        if _starts_sentence(text, m.start()):
            words = words[1:]  # a capitalised first word says nothing
        if not words or len(words) > 2:
            continue
        lowered = [w.lower() for w in words]
        if any(w in seen for w in lowered):
            continue
        if any(w in _NOT_NAMES or w in STOPWORDS for w in lowered):
            continue
        start = m.start() if len(words) == len(m.group(0).split(" ")) else m.start() + m.group(0).index(" ") + 1
        following = text[m.end() : m.end() + 2]
        if _NOT_PERSON_BEFORE.search(text, max(0, start - 8), start) and not following.startswith(("'", "\u2019")):
            continue
        name = " ".join(words)
        seen.add(name.lower())
        persons.append(name)
    return persons


_URL = re.compile(r"\bhttps?://[^\s<>\"'`)\]]+|\bwww\.[^\s<>\"'`)\]]+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PATH = re.compile(
    r"(?<![\w/~.])(?:~|\.{1,2})(?:/[\w.@+-]+)+/?"
    r"|(?<![\w/~.])(?:/[\w.@+-]+){2,}/?"
    r"|(?<![\w/.])[A-Za-z]:\\(?:[\w.-]+\\)*[\w.-]+"
    r"|(?<![\w/.-])[\w-]+(?:[/.][\w-]+)*\.(?:py|pyi|js|jsx|ts|tsx|json|jsonl|yaml|yml|toml|md|rst|txt|csv|tsv|"
    r"sql|sh|bash|cfg|ini|conf|log|html|css|go|rs|java|kt|cpp|hpp|rb|php|lock|env|xml|ipynb|parquet|"
    r"pdf|png|jpg|jpeg|gif|svg|zip|gz|tar|db|sqlite)\b"
)
_HOST_PORT = re.compile(r"\b(?:localhost|(?:\d{1,3}\.){3}\d{1,3}|[a-z][\w-]*(?:\.[\w-]+)+):\d{2,5}\b")
_PORT = re.compile(r"\bport\s+\d{2,5}\b", re.IGNORECASE)
_VERSION = re.compile(
    r"\b(?P<name>[A-Z][\w+#-]*)\s+v?\d+(?:\.\d+)+(?:[-+][\w.]*\w)?\b"  # Python 3.12, Node 18.1
    r"|\b(?i:version|release|v)\s?\d+(?:\.\d+)*(?:[-+][\w.]*\w)?\b"
    r"|\b\d+\.\d+\.\d+(?:[-+][\w.]*\w)?\b"
)
_UNITS = (
    r"%|percent|per cent|kg|kgs|g|mg|lb|lbs|pounds|oz|km|m|cm|mm|mi|miles?|kilometers?|kilometres?|meters?|"
    r"metres?|feet|ft|inches|ms|s|sec|secs|seconds?|min|mins|minutes?|hours?|hrs?|h|days?|weeks?|"
    r"months?|years?|yrs?|gb|mb|kb|tb|gib|mib|kib|ghz|mhz|hz|k|x|usd|eur|gbp|dollars?|euros?|bucks|"
    r"°c|°f|degrees|calories|kcal|steps|pages|books|people|times|tokens|rps|qps|req/s|cores|gpus?|cpus?"
)
_QUANTITY = re.compile(
    rf"(?<![\w.])[$\u20ac\u00a3]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:k|m|bn|million|billion)\b)?"
    rf"|(?<![\w.])\d[\d,]*(?:\.\d+)?\s?(?:{_UNITS})(?!\w)",
    re.IGNORECASE,
)
_QUOTED = re.compile(
    r"\"([^\"\n]{2,80})\"|\u201c([^\u201d\n]{2,80})\u201d|`([^`\n]{1,80})`|(?<![\w'])'([^'\n]{2,60})'(?![\w'])"
)
_CONNECTORS = r"of|de|du|la|le|van|von|the|for|on|&"
_CAPITALISED_RUN = re.compile(
    rf"[A-Z][\w'\u2019&-]*(?:\s+(?:(?:{_CONNECTORS})\s+){{0,2}}[A-Z][\w'\u2019&-]*)+"
)
_ANY_QUOTE = re.compile("[\"'`\u201c]")
_RUN_EDGE_WORDS = frozenset(_MONTHS + _DAYS + _CONNECTORS.split("|"))


def _trim_run(run: str) -> str:
    words = run.split()

    def edge(word: str) -> bool:
        low = word.lower().rstrip(".").replace("\u2019", "'")
        return low in STOPWORDS or low in _RUN_EDGE_WORDS or low.split("'")[0] in STOPWORDS

    while words and edge(words[0]):
        words.pop(0)
    while words and edge(words[-1]):
        words.pop()
    return " ".join(words).rstrip(".")


def _version(m: re.Match[str]) -> str | None:
    name = m.group("name")
    if name and (name.lower() in STOPWORDS or name.lower() in _RUN_EDGE_WORDS):
        return None  # "About 3.5 hours" is a quantity, not a version
    return m.group(0)


def extract_entities(text: str) -> list[str]:
    """Capitalised multi-word names, quantities with units, versions, ports, paths, URLs, emails, quotes."""
    found: list[tuple[int, str]] = []

    def take(
        pattern: re.Pattern[str], source: str, pick: Callable[[re.Match[str]], str | None] | None = None
    ) -> str:
        def keep(m: re.Match[str]) -> str:
            value = pick(m) if pick else next((g for g in m.groups() if g), m.group(0))
            if value is None:
                return m.group(0)
            value = value.strip().rstrip(".,;:!?")
            if value:
                found.append((m.start(), value))
            return " " * (m.end() - m.start())  # blank it so later patterns do not match inside

        return pattern.sub(keep, source)

    rest = text
    # cheap membership tests first: most chat sentences have no URL, path or number
    if "://" in rest or "www." in rest:
        rest = take(_URL, rest)
    if "@" in rest:
        rest = take(_EMAIL, rest)
    if _ANY_QUOTE.search(rest):
        rest = take(_QUOTED, rest)
    if "/" in rest or "\\" in rest or "." in rest:
        rest = take(_PATH, rest)
    if _ANY_DIGIT.search(rest):
        if ":" in rest:
            rest = take(_HOST_PORT, rest)
        rest = take(_PORT, rest)
        rest = take(_VERSION, rest, _version)
        rest = take(_QUANTITY, rest)
    for m in _CAPITALISED_RUN.finditer(rest):
        run = _trim_run(m.group(0))
        size = len(run.split())
        # two capitalised words opening a sentence are usually a verb and a name ("Tell Melanie")
        if size >= 3 or (size == 2 and not (run == m.group(0) and _starts_sentence(rest, m.start()))):
            found.append((m.start(), run))
    found.sort(key=lambda item: item[0])
    entities: list[str] = []
    seen: set[str] = set()
    for _, value in found:
        key = value.lower()
        if key not in seen:
            seen.add(key)
            entities.append(value)
    return entities
