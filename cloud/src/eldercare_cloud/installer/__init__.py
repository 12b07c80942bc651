"""The installer domain: claim a gateway, pair devices, walk-test lookups, commissioning
records, maintenance tasks. Its HTTP routes are ``eldercare_cloud.api.routes.installer``;
this package owns the rules, the ``installer_*`` tables and the typed rows."""

from eldercare_cloud.installer.schema import MIGRATIONS
from eldercare_cloud.installer.service import (
    BrokerNotConfiguredError,
    InstallerDeps,
    InstallerService,
)

__all__ = ["MIGRATIONS", "BrokerNotConfiguredError", "InstallerDeps", "InstallerService"]
