"""The devices this home is configured with, and what the gateway last heard from each.

Only bound devices are acted on; anything else is an unknown device, reported to the
installer once and otherwise ignored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from eldercare_protocols.catalogue import DeviceType, device_type
from eldercare_protocols.errors import UnknownDeviceError
from eldercare_protocols.uplink import DeviceBinding, DeviceStatus, GatewayConfig

log = logging.getLogger(__name__)


@dataclass
class DeviceInfo:
    binding: DeviceBinding
    dtype: DeviceType
    #: None until the device has been heard from since the gateway started
    online: bool | None = None
    last_seen: datetime | None = None
    battery: float | None = None
    rssi: int | None = None

    @property
    def device_id(self) -> str:
        return self.binding.device_id

    @property
    def z2m_name(self) -> str:
        return self.binding.z2m_name or self.binding.device_id

    @property
    def z2m_model(self) -> str | None:
        """The model the binding names, if any; the bridge's device list is what counts."""
        return self.binding.z2m_model or None

    def accepts(self, command: str) -> bool:
        return command in self.dtype.commands

    def status(self) -> DeviceStatus:
        return DeviceStatus(type=self.dtype.name, online=bool(self.online),
                            battery=self.battery, rssi=self.rssi, last_seen=self.last_seen)


class Registry:
    """Bindings from the config, indexed by device id and by Zigbee2MQTT friendly name."""

    def __init__(self, config: GatewayConfig | None = None) -> None:
        self._by_id: dict[str, DeviceInfo] = {}
        self._by_z2m: dict[str, DeviceInfo] = {}
        if config is not None:
            self.apply(config)

    def apply(self, config: GatewayConfig) -> None:
        """Rebuild from a new config; devices that stay keep what was heard from them."""
        by_id: dict[str, DeviceInfo] = {}
        for binding in config.devices:
            try:
                dtype = device_type(binding.type)
            except UnknownDeviceError:
                log.warning("config binds %s to unknown device type %r; ignoring it",
                            binding.device_id, binding.type)
                continue
            old = self._by_id.get(binding.device_id)
            info = DeviceInfo(binding, dtype)
            if old is not None and old.dtype.name == dtype.name:
                info.online, info.last_seen = old.online, old.last_seen
                info.battery, info.rssi = old.battery, old.rssi
            by_id[binding.device_id] = info
        self._by_id = by_id
        self._by_z2m = {i.z2m_name: i for i in by_id.values() if i.binding.source == "z2m"}

    def get(self, device_id: str) -> DeviceInfo | None:
        return self._by_id.get(device_id)

    def by_z2m_name(self, name: str) -> DeviceInfo | None:
        return self._by_z2m.get(name)

    def all(self) -> list[DeviceInfo]:
        return list(self._by_id.values())

    def statuses(self) -> dict[str, DeviceStatus]:
        return {d: i.status() for d, i in self._by_id.items()}
