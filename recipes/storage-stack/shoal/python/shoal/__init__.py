"""shoal: Python bindings of libshoal, the shared-memory layer of the shoal storage stack."""
from shoal._shoal import get, put, version

__all__ = ["get", "put", "version"]
