"""Build the configured channels from settings (the console/app stream needs none)."""

from __future__ import annotations

from eldercare_cloud.errors import ConfigError
from eldercare_cloud.notify.base import Channel
from eldercare_cloud.notify.sms import GsmModemChannel, HttpSmsChannel
from eldercare_cloud.notify.webhook import WebhookChannel
from eldercare_cloud.settings import CloudSettings, reveal


def channels_from_settings(settings: CloudSettings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {
        "webhook": WebhookChannel(settings.effective_webhook_secret,
                                  settings.notify.webhook_timeout_s)}
    if settings.sms.provider == "http":
        if not settings.sms.http_url:
            raise ConfigError("sms.provider=http needs ELDERCARE_CLOUD_SMS__HTTP_URL")
        channels["sms"] = HttpSmsChannel(settings.sms.http_url, reveal(settings.sms.http_token),
                                         settings.sms.timeout_s)
    elif settings.sms.provider == "gsm":
        if not settings.sms.serial_port:
            raise ConfigError("sms.provider=gsm needs ELDERCARE_CLOUD_SMS__SERIAL_PORT")
        channels["sms"] = GsmModemChannel(settings.sms.serial_port, settings.sms.serial_baud,
                                          settings.sms.timeout_s)
    return channels
