"""Fixtures of the fleet tests (see fleet_support.py)."""

from fleet_support import endpoint, queue_name, redis_client, start_worker

__all__ = ["endpoint", "queue_name", "redis_client", "start_worker"]
