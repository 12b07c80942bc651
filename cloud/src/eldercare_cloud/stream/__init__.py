"""The live stream of alert changes (server-sent events), scoped per role."""

from eldercare_cloud.stream.hub import MIGRATIONS, StreamEvent, StreamHub

__all__ = ["MIGRATIONS", "StreamEvent", "StreamHub"]
