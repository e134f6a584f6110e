"""LangChain / LangGraph integrations (install the `langchain` extra).

- `langgraph.MemoryServiceStore`: a LangGraph `BaseStore`.
- `langchain.MemoryServiceRetriever` and `langchain.create_memory_tools`.
- `callbacks.MemoryServiceCallbackHandler`: logs an agent's run as events.
"""
