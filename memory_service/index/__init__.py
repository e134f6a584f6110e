"""Index: embeddings, and the FAISS indexes kept in step with the SQL change log."""
