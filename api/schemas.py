"""Request and response bodies of the REST API.

The models live in `memory_service.schemas` (the Python client uses them too, and
`memory_service` must not import `api`); this module re-exports them.
"""

from __future__ import annotations

from memory_service.schemas import (
    ConsolidationResponse,
    ContextRequest,
    ContextResponse,
    ContextStats,
    ContextUnit,
    DeleteResponse,
    EventDeleteResponse,
    EventPage,
    FailedJobInfo,
    Health,
    IngestRequest,
    IngestResponse,
    JobsResponse,
    MemoryHistory,
    MemoryPage,
    ScopeDeleteResponse,
)

__all__ = [
    "ConsolidationResponse",
    "ContextRequest",
    "ContextResponse",
    "ContextStats",
    "ContextUnit",
    "DeleteResponse",
    "EventDeleteResponse",
    "EventPage",
    "FailedJobInfo",
    "Health",
    "IngestRequest",
    "IngestResponse",
    "JobsResponse",
    "MemoryHistory",
    "MemoryPage",
    "ScopeDeleteResponse",
]
