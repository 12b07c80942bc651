"""Browser tests of the operator console and the phone pages (tests/console)."""
