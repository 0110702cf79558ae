"""slimfreeze's MQTT worker application: small device programs sharing one MQTT interface.

Kept import-free on purpose: every module the frozen program loads costs bytes on the device.
"""

__version__ = "0.1.0"
