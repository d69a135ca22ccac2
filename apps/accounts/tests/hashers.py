"""A password hasher that counts its work, so a test can show a refused login never reached it."""

import threading

from django.contrib.auth.hashers import MD5PasswordHasher


class CountingMD5PasswordHasher(MD5PasswordHasher):
    """MD5 (the test settings' hasher, same stored format) counting every hash it computes:
    `verify` (a login) and `encode` (a new password, and the dummy hash Django runs for an
    unknown email) both go through `encode`."""

    _lock = threading.Lock()
    calls = 0

    def encode(self, password: str, salt: str) -> str:
        with self._lock:
            type(self).calls += 1
        return super().encode(password, salt)


COUNTING_HASHER = f"{__name__}.CountingMD5PasswordHasher"
