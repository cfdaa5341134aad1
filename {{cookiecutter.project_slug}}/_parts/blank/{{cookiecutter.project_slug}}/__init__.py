"""This problem set's package: its commands are in cli.py."""

__version__ = "0.1.0"
