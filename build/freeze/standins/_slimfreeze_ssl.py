"""TLS-free stand-in for `ssl` (profile `tls = false`).

paho-mqtt imports `ssl` and names its exception classes on the plain-TCP path (`_sock_recv`,
`_sock_send` catch `ssl.SSLWantReadError`), so the module must exist even without TLS; the real
one drags in `_ssl`, libssl and libcrypto (about 5.6 MB). This keeps the names paho-mqtt touches and
makes every attempt to use TLS fail with one clear message.
"""

MESSAGE = "TLS is not available in this build (its slimfreeze profile has tls = false)"

CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED = 0, 1, 2
PROTOCOL_TLS = PROTOCOL_SSLv23 = 2
PROTOCOL_TLS_CLIENT = 16
PROTOCOL_TLSv1_2 = 5
HAS_SNI = False


class SSLError(OSError):
    pass


class SSLZeroReturnError(SSLError):
    pass


class SSLWantReadError(SSLError):
    pass


class SSLWantWriteError(SSLError):
    pass


class SSLSyscallError(SSLError):
    pass


class SSLEOFError(SSLError):
    pass


class SSLCertVerificationError(SSLError, ValueError):
    pass


CertificateError = SSLCertVerificationError


class TLSUnavailableError(SSLError):
    """Raised by anything that would need real TLS."""

    def __init__(self) -> None:
        super().__init__(MESSAGE)


class VerifyMode(int):
    pass


class SSLSocket:
    def __init__(self, *args, **kwargs) -> None:
        raise TLSUnavailableError()


class SSLContext:
    def __init__(self, *args, **kwargs) -> None:
        raise TLSUnavailableError()


def create_default_context(*args, **kwargs):
    raise TLSUnavailableError()


def wrap_socket(*args, **kwargs):
    raise TLSUnavailableError()


def match_hostname(*args, **kwargs):
    raise TLSUnavailableError()
