"""Small stand-in for `urllib.request`.

paho-mqtt imports `urllib.request` only to read proxy settings, and only uses it when PySocks is
installed (it is not bundled). The real module pulls in http.client, email.*, ssl, hashlib and more.
This keeps the two functions paho-mqtt calls, with the standard library's environment semantics.
"""

import os


def getproxies():
    """Proxies from `<scheme>_proxy` environment variables (lower case wins), as urllib does."""
    proxies = {}
    for name, value in os.environ.items():
        lowered = name.lower()
        if value and lowered.endswith("_proxy"):
            scheme = lowered[: -len("_proxy")]
            if name == lowered or scheme not in proxies:
                proxies[scheme] = value
    return proxies


def proxy_bypass(host):
    """True when `host` matches an entry of no_proxy (comma-separated names or suffixes, or *)."""
    no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    if no_proxy.strip() == "*":
        return True
    hostname = host.split(":", 1)[0].lower()
    for entry in (e.strip().lstrip(".").lower() for e in no_proxy.split(",")):
        if entry and (hostname == entry or hostname.endswith("." + entry)):
            return True
    return False
