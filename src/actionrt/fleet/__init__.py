"""The fleet: many worker processes on one Redis share the call queue, the limits, the
throttling queue and the tokens (contract §5). `Queue` submits; `actionrt worker` serves."""

from actionrt.fleet.engine import QueueUnavailableError
from actionrt.fleet.queue import CallRefusedError, Queue

__all__ = ["CallRefusedError", "Queue", "QueueUnavailableError"]
