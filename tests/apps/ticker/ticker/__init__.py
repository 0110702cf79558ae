"""ticker: a small asyncio program of another shape than the MQTT app, frozen by slimfreeze's tests."""

__version__ = "1.0"
