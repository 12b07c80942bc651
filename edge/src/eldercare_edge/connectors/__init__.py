"""Connectors own I/O (brokers, serial ports, the modem); nothing behind them sees bytes."""
