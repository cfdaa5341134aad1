"""Random web-log events, streamed into Elasticsearch with asyncio and aiohttp."""

__version__ = "0.1.0"
