"""A real mosquitto on a free loopback port and test certificates: for the smoke test, the sweep's
measurements and the test suite alike."""
