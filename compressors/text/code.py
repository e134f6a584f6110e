"""Markdown in conversation turns: fenced code and config blocks reduced to one line, marks dropped.

Agent-style turns paste code, configs and shell sessions. A memory unit cannot hold
them verbatim, and cutting them keeps a random part; what a later question asks about is
what the block imports, defines, sets and runs (names, values, versions). `code_gist`
names those in one line. Regex based and cheap like the rest of `compressors.text`:
no parser, any language, and never raises (an unreadable block gets a gist of its
language and size).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A fence: ``` or ~~~ (3+), an optional info string; the block ends at a fence of the same kind.
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*$", re.MULTILINE)

MAX_ITEMS = 8  # per kind (imports, defines, sets, runs)
MAX_ITEM_CHARS = 80
MAX_GIST_CHARS = 400
MAX_BLOCK_LINES = 400  # a pasted log is read only this far

_SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "zsh", "console", "shell-session", "powershell", "ps", "cmd", "bat"})
_CONFIG_LANGUAGES = frozenset({"yaml", "yml", "toml", "ini", "cfg", "conf", "env", "dotenv", "properties", "json", "jsonc"})

# --------------------------------------------------------------------------- what a block does

_IMPORT_PATTERNS = (
    re.compile(r"^\s*from\s+([\w.]+)\s+import\s+\(?([\w., ]+)"),  # python: from x import a, b
    re.compile(r"^\s*import\s+([\w.]+(?:\s*,\s*[\w.]+)*)\s*;?\s*$"),  # python / java / go one-liner
    re.compile(r"""^\s*import\s+(?:type\s+)?(?:[\w*{}\s,]+?\s+from\s+)?["']([^"']+)["']"""),  # js / ts
    re.compile(r"""\brequire\(\s*["']([^"']+)["']\s*\)"""),  # node
    re.compile(r"^\s*#\s*include\s*[<\"]([^>\"]+)[>\"]"),  # c / c++
    re.compile(r"^\s*use\s+([\w:]+)"),  # rust / php
    re.compile(r"^\s*(?:library|require)\(([\w.]+)\)"),  # r
)
_DEFINE_PATTERNS = (
    (re.compile(r"^\s*(?:async\s+)?def\s+(\w+)"), "{}()"),
    (re.compile(r"^\s*class\s+(\w+)"), "class {}"),
    (re.compile(r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*(\w+)"), "{}()"),
    (re.compile(r"^\s*(?:export\s+)?(?:const|let|var)\s+(\w+)\s*=\s*(?:async\s*)?(?:\([^)]*\)|\w+)\s*=>"), "{}()"),
    (re.compile(r"^\s*func\s+(?:\([^)]*\)\s*)?(\w+)"), "{}()"),
    (re.compile(r"^\s*(?:pub\s+)?fn\s+(\w+)"), "{}()"),
    (re.compile(r"^\s*(?:export\s+)?(?:interface|type|struct|enum|trait)\s+(\w+)"), "type {}"),
    (re.compile(r"^\s*(?:public|private|protected)\s+(?:static\s+)?(?:class|interface)\s+(\w+)"), "class {}"),
    (re.compile(r"^\s*create\s+(?:table|view|index)\s+(?:if\s+not\s+exists\s+)?([\w.\"`]+)", re.IGNORECASE), "table {}"),
    (re.compile(r"^\s*(?:FROM)\s+(\S+)"), "image {}"),  # dockerfile base image
)
# a decorator with a string argument (a route, a topic, a schedule): kept with what it decorates
_DECORATOR = re.compile(r"""^\s*@([\w.]+)\(\s*["']([^"']{1,80})["']""")
# assignments of a literal: NAME = 42, key: "value", "key": true, key = 1.5, ENV X=Y, app.config["K"] = "v"
_LITERAL = r"""(?:"[^"\n]{0,80}"|'[^'\n]{0,80}'|-?\d[\w.:/-]*|true|false|True|False|null|None|[\w.:/@-]+)"""
_SET_PATTERNS = (
    re.compile(rf"""^\s*(?:export\s+|ENV\s+|ARG\s+|(?:const|let|var|final|static)\s+)?([\w.]+(?:\[["'][\w.-]+["']\])?)\s*(?::\s*\w+\s*)?=\s*({_LITERAL})\s*[;,]?\s*(?:#.*|//.*)?$"""),
    re.compile(rf"""^\s*["']?([\w.-]+)["']?\s*:\s*({_LITERAL})\s*,?\s*(?:#.*)?$"""),  # yaml / json
    re.compile(r"""^\s*(?:ENV|ARG)\s+(\w+)\s+(\S+)"""),  # ENV KEY value
)
_BARE_NAME = re.compile(r"^(?!(?:true|false|True|False|null|None)$)[A-Za-z_][\w.]*$")
_SHELL_COMMENT = re.compile(r"\s+#\s.*$")
_SET_NOISE_KEYS = frozenset({"id", "self", "this", "i", "j", "k", "_", "x", "y", "n"})
# a shell command line ($ prompt optional); in a shell block every line is one
_PROMPT = re.compile(r"^\s*(?:\$|PS>|>>>)\s+")
_COMMANDS = re.compile(
    r"^(?:sudo\s+)?(?:pip3?|python3?|npm|npx|yarn|pnpm|docker(?:-compose)?|kubectl|helm|git|cargo|"
    r"curl|wget|apt(?:-get)?|brew|conda|poetry|uv|pytest|terraform|aws|gcloud|systemctl|"
    r"flask|uvicorn|gunicorn|mvn|gradle|psql|redis-cli|celery|alembic)\s+[\w.-].*"
)
_DOCKER_RUN = re.compile(r"^\s*(?:RUN|CMD|ENTRYPOINT)\s+(.+)")
# a call at the top level of a script: app.run(debug=True), main(), client.connect("host")
_TOP_CALL = re.compile(r"^([A-Za-z_][\w.]*)\((.{0,60}?)\)\s*;?\s*$")
_VERSION_PIN = re.compile(r"^\s*([A-Za-z][\w.-]*)\s*(==|>=|<=|~=|@|\^|~)\s*v?(\d[\w.*-]*)\s*$")  # requirements lines

_TRIM_QUOTES = str.maketrans("", "", "\"'`")
_SUBSCRIPT_KEY = re.compile(r"""\[["']([\w.-]+)["']\]$""")


def _item(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ITEM_CHARS else text[: MAX_ITEM_CHARS - 1].rstrip() + "\u2026"


@dataclass(slots=True)
class _Found:
    imports: list[str]
    defines: list[str]
    sets: list[str]
    runs: list[str]

    def add(self, kind: list[str], value: str) -> None:
        value = _item(value)
        if value and value not in kind and len(kind) < MAX_ITEMS:
            kind.append(value)


def _imports(line: str) -> str | None:
    for i, pattern in enumerate(_IMPORT_PATTERNS):
        m = pattern.search(line)
        if m is None:
            continue
        if i == 0:  # from x import a, b
            names = [n.strip() for n in m.group(2).split(",") if n.strip()]
            more = ", \u2026" if len(names) > 4 else ""
            return f"{m.group(1)} ({', '.join(names[:4])}{more})"
        return m.group(1)
    return None


def _setting(name: str) -> str:
    """`app.config["DEBUG"]` -> `DEBUG`; other names as written, without quotes."""
    key = _SUBSCRIPT_KEY.search(name)
    return key.group(1) if key else name.translate(_TRIM_QUOTES)


def _scan(lines: list[str], language: str, found: _Found) -> None:
    shell = language in _SHELL_LANGUAGES
    config = language in _CONFIG_LANGUAGES
    decorator: str | None = None
    in_body = False  # inside a top-level def / class / function: its calls are not what the script runs
    for raw in lines:
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith(("//", "/*", "*", "--")) or (stripped.startswith("#") and not stripped.startswith("#include")):
            continue
        top_level = not line[:1].isspace()
        if shell or _PROMPT.match(line):
            command = _SHELL_COMMENT.sub("", _PROMPT.sub("", line)).strip()
            if command:
                found.add(found.runs, command)
            continue
        if not config:
            imported = _imports(line)
            if imported:
                found.add(found.imports, imported)
                continue
            m = _DECORATOR.match(line)
            if m:
                decorator = f"{m.group(1)} {m.group(2)}"
                continue
            defined = None
            for pattern, template in _DEFINE_PATTERNS:
                d = pattern.match(line)
                if d:
                    defined = template.format(d.group(1).translate(_TRIM_QUOTES))
                    break
            if defined:
                found.add(found.defines, f"{defined} ({decorator})" if decorator else defined)
                decorator = None
                in_body = in_body if not top_level else True
                continue
            if top_level and stripped not in ("}", "};", ")", "end"):
                in_body = False
            m = _DOCKER_RUN.match(line)
            if m:
                found.add(found.runs, m.group(1))
                continue
            m = _COMMANDS.match(line)
            if m:
                found.add(found.runs, m.group(0))
                continue
        pin = _VERSION_PIN.match(line)
        if pin:
            found.add(found.sets, f"{pin.group(1)} {pin.group(2)}{pin.group(3)}".replace(" ==", " "))
            continue
        for pattern in _SET_PATTERNS:
            m = pattern.match(line)
            # in code a bare name is a variable, not a value (in a config it is the value)
            if m and m.group(1).lower() not in _SET_NOISE_KEYS and (config or not _BARE_NAME.match(m.group(2))):
                found.add(found.sets, f"{_setting(m.group(1))}={m.group(2).strip()}")
                break
        else:
            if not config and not in_body:
                m = _TOP_CALL.match(stripped)
                if m and not m.group(1).startswith(("print", "console.", "return")):
                    found.add(found.runs, f"{m.group(1)}({m.group(2)})")


def code_gist(code: str, language: str = "") -> str:
    """One line naming what a code or config block imports, defines, sets and runs.

    `language` is the fence's info string ("python", "yaml", "bash"; may be empty).
    The line reads "code (python): imports flask (Flask); defines User, register(); sets
    DEBUG=True; runs app.run(debug=True)", each kind at most `MAX_ITEMS` items, the
    whole at most `MAX_GIST_CHARS`. Nothing recognisable: "code (python, 12 lines)".
    """
    language = (language or "").strip().lower()
    lines = code.splitlines()
    found = _Found([], [], [], [])
    try:
        _scan(lines[:MAX_BLOCK_LINES], language, found)
    except (re.error, IndexError, ValueError):  # never fail an event on odd code
        pass
    label = f"code ({language})" if language else "code"
    parts = []
    for verb, items in (("imports", found.imports), ("defines", found.defines), ("sets", found.sets), ("runs", found.runs)):
        if items:
            parts.append(f"{verb} {', '.join(items)}")
    if not parts:
        size = sum(1 for line in lines if line.strip())
        return f"{label[:-1]}, {size} line{'s' if size != 1 else ''})" if language else f"code ({size} line{'s' if size != 1 else ''})"
    gist = f"{label}: {'; '.join(parts)}"
    return gist if len(gist) <= MAX_GIST_CHARS else gist[: MAX_GIST_CHARS - 1].rstrip() + "\u2026"


# --------------------------------------------------------------------------- markdown


@dataclass(slots=True)
class Segment:
    """A run of prose, or one code block already reduced to its gist (`code=True`)."""

    text: str
    code: bool = False


def split_code_blocks(text: str) -> list[Segment]:
    """Prose and fenced code blocks in order; a fence left open runs to the end of the text."""
    if "```" not in text and "~~~" not in text:
        return [Segment(text)] if text.strip() else []
    segments: list[Segment] = []
    position = 0
    while True:
        opening = _FENCE.search(text, position)
        if opening is None:
            break
        fence = opening.group(1)
        closing = re.compile(rf"^[ \t]{{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE)
        end = closing.search(text, opening.end())
        body = text[opening.end() + 1 : end.start() if end else len(text)]
        prose = text[position : opening.start()]
        if prose.strip():
            segments.append(Segment(prose))
        if body.strip():
            segments.append(Segment(code_gist(body, opening.group(2)), code=True))
        if end is None:
            return segments
        position = end.end()
    if text[position:].strip():
        segments.append(Segment(text[position:]))
    return segments


_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", re.MULTILINE)
_QUOTE = re.compile(r"^[ \t]{0,3}>[ \t]?", re.MULTILINE)
_RULE = re.compile(r"^[ \t]*(?:[-*_][ \t]*){3,}$", re.MULTILINE)
_TABLE_SEPARATOR = re.compile(r"^[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(?:\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*$", re.MULTILINE)
_TABLE_ROW = re.compile(r"^[ \t]*\|(.*)\|[ \t]*$", re.MULTILINE)
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])|(?<![\w_])_(?=[^\s_])([^_\n]+?)(?<=[^\s_])_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_INLINE_CODE = re.compile(r"`+([^`\n]+?)`+")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s\n]+)[^)\n]*\)")


def _heading(m: re.Match[str]) -> str:
    return m.group(1).strip()


def _row(m: re.Match[str]) -> str:
    cells = [c.strip() for c in m.group(1).split("|")]
    return "; ".join(c for c in cells if c)


def strip_markdown(text: str) -> str:
    """Prose without markdown marks: heading marks ("### Step 1" -> "Step 1"), emphasis,
    strike-through and inline-code marks go, links keep their text and address, table rows
    become "a; b; c", rules and table separators go. Line breaks stay (they end sentences)."""
    # each pattern only where its mark occurs: most conversation turns have none
    if "--" in text or "**" in text or "__" in text:
        text = _RULE.sub("", text)
    if "|" in text:
        text = _TABLE_SEPARATOR.sub("", text)
        text = _TABLE_ROW.sub(_row, text)
    if "#" in text:
        text = _HEADING.sub(_heading, text)
    if ">" in text:
        text = _QUOTE.sub("", text)
    if "](" in text:
        text = _IMAGE.sub(lambda m: m.group(1), text)
        text = _LINK.sub(lambda m: m.group(1) if m.group(1) == m.group(2) else f"{m.group(1)} ({m.group(2)})", text)
    if "`" in text:
        text = _INLINE_CODE.sub(lambda m: m.group(1), text)
    if "**" in text or "__" in text:
        text = _STRONG.sub(lambda m: m.group(2), text)
    if "~~" in text:
        text = _STRIKE.sub(lambda m: m.group(1), text)
    if "*" not in text and "_" not in text:
        return text
    return _EMPHASIS.sub(lambda m: m.group(1) or m.group(2), text)
