"""Reading a unit's statements the way consolidation does: `statements.extract`, favourites
without a category noun categorised by the embedder.

The consolidator reads fresh and old units with this, and `rebuild.py` re-derives stored
statement keys with it, so both give a unit the same keys.
"""

from __future__ import annotations

import numpy as np

from memory_service.consolidate import statements as st
from memory_service.domain import MemoryUnit
from memory_service.index.embedding import Embedder


class StatementReader:
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._categories: tuple[list[str], np.ndarray] | None = None
        self._category_cache: dict[str, str | None] = {}

    def statements(self, unit: MemoryUnit) -> list[st.Statement]:
        """The unit's subject-attribute-value statements (`statements.extract`), favourites
        categorised by the embedder."""
        return st.extract(unit.text, unit.persons, self.categorize)

    def keys(self, unit: MemoryUnit) -> list[str]:
        """The `subject|attribute` keys the unit is stored under in `unit_statements`."""
        return st.keys(self.statements(unit))

    def categorize(self, text: str) -> str | None:
        """A guess at a favourite's category from its value ("tacos" -> food), when one is near enough.

        MiniLM knows common things (colours, sports, drinks) better than dishes, so a guess
        only pairs updates (`statements.compare`); it never keeps equal values apart."""
        key = text.lower().strip()
        if key in self._category_cache:
            return self._category_cache[key]
        if self._categories is None:
            names = list(st.FAVORITE_CATEGORIES)
            # Phrased alike on both sides: "my favorite food" / "my favorite is ramen" compare
            # better than a bare word with a description.
            self._categories = names, np.asarray(self.embedder.embed([f"my favorite {n}" for n in names]))
        names, vectors = self._categories
        scores = vectors @ np.asarray(self.embedder.embed([f"my favorite is {text}"]))[0]
        best = int(np.argmax(scores))
        found = names[best] if float(scores[best]) >= 0.5 else None
        self._category_cache[key] = found
        return found
