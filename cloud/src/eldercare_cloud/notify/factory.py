"""Build the configured channels from settings (the console/app stream needs none)."""

from __future__ import annotations

from eldercare_cloud.errors import ConfigError
from eldercare_cloud.notify.base import Channel
from eldercare_cloud.notify.sms import GsmModemChannel, HttpSmsChannel
from eldercare_cloud.notify.webhook import WebhookChannel
from eldercare_cloud.settings import CloudSettings


def channels_from_settings(settings: CloudSettings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {
        "webhook": WebhookChannel(settings.effective_webhook_secret, settings.webhook_timeout_s)}
    if settings.sms_provider == "http":
        if not settings.sms_http_url:
            raise ConfigError("sms_provider=http needs ELDERCARE_CLOUD_SMS_HTTP_URL")
        channels["sms"] = HttpSmsChannel(settings.sms_http_url, settings.sms_http_token,
                                         settings.sms_timeout_s)
    elif settings.sms_provider == "gsm":
        if not settings.sms_serial_port:
            raise ConfigError("sms_provider=gsm needs ELDERCARE_CLOUD_SMS_SERIAL_PORT")
        channels["sms"] = GsmModemChannel(settings.sms_serial_port, settings.sms_serial_baud,
                                          settings.sms_timeout_s)
    return channels
