"""The LM query analysis prompt: names, key words, a time expression, and whether a
question needs several facts. `memory_service.context.lm_analysis` grounds the answer.
Change `VERSION` whenever the messages or the schema change.
"""

from __future__ import annotations

from typing import Any

VERSION = "1"

SYSTEM = """You prepare a question for a search in a person's memory notes.
List the names of people, places and things in the question, and its key words (copied from the question, or their plain form: "painting" -> "paint").
Copy any time expression from the question exactly ("" if there is none).
Say whether answering needs several separate facts (comparing, listing, or combining events).
Answer with JSON only: {"entities": ["..."], "keywords": ["..."], "time_expression": "...", "needs_several_facts": true or false}"""

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "entities": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 6},
        "keywords": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 8},
        "time_expression": {"type": "string", "maxLength": 60},
        "needs_several_facts": {"type": "boolean"},
    },
    "required": ["entities", "keywords", "time_expression", "needs_several_facts"],
}


def question_messages(query: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Question: {query}"}]
