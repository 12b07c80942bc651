"""eldercare_edge: the home gateway (inputs, local rules, lossless outbox, uplink, SMS)."""

__version__ = "0.1.0"
