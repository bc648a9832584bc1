"""`pulumi up` in bootstrap/: what must exist before dr-platform's first deploy (docs/ci-setup.md)."""

from bootstrap.config import load_config
from bootstrap.stack import build

build(load_config())
