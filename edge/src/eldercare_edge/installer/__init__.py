"""The installer's tool (``eldercare-install``): claim a gateway, pair devices, write device
settings over a serial cable, walk-test every device end to end, print the
commissioning record. The cloud side lives in ``eldercare_cloud.installer``."""
