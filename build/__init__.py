"""slimfreeze: freeze the MQTT application into the smallest working executables and account for every byte.

Used from the source tree only (`python build.py ...`); never installed as a top-level package.
"""
