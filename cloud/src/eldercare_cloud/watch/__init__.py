"""The cloud's own listener for GPS SOS watches that connect over the mobile network."""

from eldercare_cloud.watch.server import WATCH_GATEWAY, WatchCounters, WatchServer
from eldercare_cloud.watch.store import WatchStore

__all__ = ["WATCH_GATEWAY", "WatchCounters", "WatchServer", "WatchStore"]
