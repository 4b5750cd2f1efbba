"""The IOC HTTP API (FastAPI). Not built yet: the operational-status endpoints are a later issue.

The queries it will serve already run on both storage paths: ``ioc.device_state`` for freshness and status,
``ioc.<family>_15m`` / ``ioc.<family>_1h`` for history (see README, "Architecture").
"""
