"""Cloud broker security: Mosquitto's dynamic-security plugin, its files and its API.

- ``files``: the initial ``dynamic-security.json`` (admin + cloud-ingest accounts,
  deny-by-default) and a ``mosquitto.conf`` that loads the plugin;
- ``dynsec``: ``DynsecClient`` / ``AsyncDynsecClient``, which create a gateway's
  account and role (its own ``ec/v1/{id}/up/#`` to publish, ``ec/v1/{id}/down/#`` to
  read) and revoke it (the live session is kicked at once);
- ``names``: what may be a broker username or client id at all.
"""

from eldercare_cloud.broker.dynsec import AsyncDynsecClient, DynsecClient, DynsecOptions
from eldercare_cloud.broker.errors import (
    AccountExistsError,
    BrokerSecurityError,
    BrokerUnavailableError,
    DynsecCommandError,
    InvalidAccountError,
)
from eldercare_cloud.broker.files import (
    Account,
    BrokerFiles,
    generate_password,
    write_broker_files,
)

__all__ = [
    "Account",
    "AccountExistsError",
    "AsyncDynsecClient",
    "BrokerFiles",
    "BrokerSecurityError",
    "BrokerUnavailableError",
    "DynsecClient",
    "DynsecCommandError",
    "DynsecOptions",
    "InvalidAccountError",
    "generate_password",
    "write_broker_files",
]
