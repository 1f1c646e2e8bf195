"""Configuration loading for a small service."""

import json
from dataclasses import dataclass

DEFAULT_PORT = 8080


# Settings read from disk.
# Unknown keys are ignored.
@dataclass(frozen=True)
class Config:
    """Runtime settings — port and host."""

    port: int = DEFAULT_PORT
    host: str = "localhost"

    @classmethod
    def load(cls, path: str) -> "Config":
        """Read a JSON file into a Config."""
        with open(path) as handle:
            raw = json.load(handle)

        def pick(key: str, default: object) -> object:
            return raw.get(key, default)

        return cls(port=int(pick("port", DEFAULT_PORT)), host=str(pick("host", "localhost")))

    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
# a dedented comment, not part of Config


def retry(times: int):
    def decorate(func):
        def wrapper(*args, **kwargs):
            for _ in range(times - 1):
                try:
                    return func(*args, **kwargs)
                except OSError:
                    pass
            return func(*args, **kwargs)

        return wrapper

    return decorate


async def fetch(url: str) -> bytes:
    'Fetch a URL; naïve and slow.'
    return url.encode()
