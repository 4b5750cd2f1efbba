"""API settings (``IOC_API_*`` on top of the shared ``IOC_*`` ones), validated at start."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ioc.settings import CommonSettings


class ApiSettings(CommonSettings):
    api_host: str = "127.0.0.1"
    api_port: Annotated[int, Field(ge=0, le=65535)] = 8000
    # Comma-separated origins allowed by CORS; empty (the default) sends no CORS headers at all.
    api_cors_origins: str = ""
    # Threads serve requests (sync routes); one connection each at most, plus headroom for health checks.
    api_pool_min: Annotated[int, Field(ge=1, le=100)] = 2
    api_pool_max: Annotated[int, Field(ge=1, le=200)] = 10
    # No query runs longer than this: a request that needs more is too big and must be narrowed.
    api_statement_timeout_ms: Annotated[int, Field(ge=100, le=600_000)] = 10_000
    api_max_range_days: Annotated[int, Field(ge=1, le=3660)] = 400
    # Points in one series response (buckets × series): beyond this the request is refused, never truncated.
    api_max_points: Annotated[int, Field(ge=10, le=1_000_000)] = 10_000
    api_max_page_size: Annotated[int, Field(ge=1, le=100_000)] = 1_000
    api_default_page_size: Annotated[int, Field(ge=1, le=100_000)] = 100
    # Devices in one latest-readings or series request by explicit ids.
    api_max_ids: Annotated[int, Field(ge=1, le=100_000)] = 1_000
    # A verified key is trusted this long before it is looked up again: revocation takes effect within it.
    api_key_cache_s: Annotated[float, Field(ge=0, le=300)] = 5.0
    # Time zone for bucket alignment and "day" KPIs when a request names none.
    api_default_tz: str = "Asia/Ho_Chi_Minh"

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.api_cors_origins.split(",") if o.strip()]
