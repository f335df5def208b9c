"""The data directory holds secrets at rest: the signing and admin keys, the
embedded Redis files (orders, identities, payment client secrets) and
localstripe's store. It is kept private to the server's user: the directory
tree 0700, every file in it 0600, fixed on every start for trees made by
older versions. Must not import any domain package.
"""

import logging
import os
import stat
from pathlib import Path

logger = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
# Files created later by us or our children (Redis rewriting its AOF,
# localstripe's store, recordings) come out private too.
UMASK = 0o077


def secure(data_dir: Path) -> int:
    """Make the tree private; how many entries had to be fixed."""
    data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    fixed = _chmod(data_dir, DIR_MODE)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            fixed += _chmod(Path(root) / name, DIR_MODE)
        for name in files:
            fixed += _chmod(Path(root) / name, FILE_MODE)
    if fixed:
        logger.warning("made %d entries of the data dir %s private (0700/0600)", fixed, data_dir)
    return fixed


def _chmod(path: Path, mode: int) -> int:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return 0
    # Sockets and links are left alone (the Redis socket has its own 0700).
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        return 0
    if stat.S_IMODE(st.st_mode) == mode:
        return 0
    path.chmod(mode)
    return 1
