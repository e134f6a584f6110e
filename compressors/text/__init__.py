"""Text helpers: the shared words (`words`), extraction, speaker rewriting and dates."""
