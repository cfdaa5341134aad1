"""Game events: a game API whose every action becomes an event, landed as tables."""

__version__ = "0.1.0"
