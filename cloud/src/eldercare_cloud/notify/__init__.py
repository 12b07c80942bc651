"""Channels (console stream, webhook, SMS) behind one interface, and their dispatcher."""

from eldercare_cloud.notify.base import Channel, Delivery, Outbound

__all__ = ["Channel", "Delivery", "Outbound"]
