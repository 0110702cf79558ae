"""Small stand-in for `urllib.request`.

paho-mqtt imports `urllib.request` only to read proxy settings, and only uses it when PySocks is
installed (it is not bundled). The real module pulls in http.client, email.*, ssl, hashlib and more.
This keeps the two functions paho-mqtt calls, with the standard library's environment semantics.
"""

import os


def getproxies():
    """urllib.request.getproxies_environment: `<scheme>_proxy` variables, lower case winning (an
    empty lower-case one removes the scheme); HTTP_PROXY is ignored under CGI (REQUEST_METHOD)."""
    proxies = {}
    for name, value in os.environ.items():
        name = name.lower()
        if value and name[-6:] == "_proxy":
            proxies[name[:-6]] = value
    if "REQUEST_METHOD" in os.environ:
        proxies.pop("http", None)
    for name, value in os.environ.items():
        if name[-6:] == "_proxy":
            if value:
                proxies[name.lower()[:-6]] = value
            else:
                proxies.pop(name.lower()[:-6], None)
    return proxies


def proxy_bypass(host):
    """urllib.request.proxy_bypass_environment: True when `host` (with or without its port)
    matches an entry of no_proxy: a name, a domain suffix (leading dots ignored) or '*'."""
    no_proxy = getproxies().get("no")
    if no_proxy is None:
        return False
    if no_proxy == "*":
        return True
    host = host.lower()
    hostonly, colon, port = host.rpartition(":")
    if not colon or not (port == "" or (port.isascii() and port.isdigit())):
        hostonly = host
    for name in no_proxy.split(","):
        name = name.strip()
        if name:
            name = name.lstrip(".").lower()
            if name in (hostonly, host) or hostonly.endswith("." + name) or host.endswith("." + name):
                return True
    return False
