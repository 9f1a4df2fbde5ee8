"""Make uuid.uuid5 accept a bytes name on Python 3.11, as Python 3.12 and later do.

LocalStack 4.13.1 calls uuid.uuid5(namespace, key_material) with bytes when it
creates a KMS key (localstack/services/kms/models.py, generate_key_material_id).
Python 3.11's uuid5 encodes the name with bytes(name, "utf-8"), which raises
TypeError for bytes, so KMS CreateKey fails.

scripts/localstack copies this module into the LocalStack virtual environment
together with a .pth file that imports it, so the patch is in place before
LocalStack is imported. It changes nothing for str names or on Python 3.12+.
"""

import hashlib
import sys
import uuid

if sys.version_info < (3, 12):
    _uuid5_str_only = uuid.uuid5

    def _uuid5(namespace, name):
        if isinstance(name, (bytes, bytearray)):
            digest = hashlib.sha1(namespace.bytes + bytes(name)).digest()
            return uuid.UUID(bytes=digest[:16], version=5)
        return _uuid5_str_only(namespace, name)

    _uuid5.__doc__ = _uuid5_str_only.__doc__
    uuid.uuid5 = _uuid5
