"""Redis clients: one Redis (a blocking pool) or, with
`DROPROOM_REDIS_CLUSTER=1`, a Redis Cluster client that finds the other
nodes from the one `REDIS_URL` names and sends each command and script to
the node owning its hash slot (every script of ours touches one slot).
"""

import asyncio
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.driver_info import DriverInfo

MAX_CONNECTIONS = 256
# A cluster node's pool has room beyond the commands let through at once: a
# connection it releases in the background (marked to reconnect after an
# error or a timeout) still counts until that task runs, and a full pool
# refuses the next command (MaxConnectionsError, seen in a 500-buyer rush).
CLUSTER_POOL_HEADROOM = 64
# What each new connection tells Redis (CLIENT SETINFO), worked out once:
# redis-py otherwise reads its own package metadata from disk (importlib.metadata,
# a file open and an e-mail header parse, ~1 ms) for every connection it opens,
# and a rush opens the pool's connections while the buyers wait (bench/drop_rush.py).
DRIVER_INFO = DriverInfo()


class BlockingCluster(RedisCluster):
    """A node's pool of the cluster client refuses a command when it is full
    (MaxConnectionsError); a rush of handlers waits for its turn instead, as
    with the blocking pool of a single Redis."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = asyncio.Semaphore(MAX_CONNECTIONS)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._gate:
            return await super().execute_command(*args, **kwargs)


def connect(url: str, *, cluster: bool = False, **kwargs: Any) -> aioredis.Redis:
    if cluster:
        # The cluster client speaks the same commands; the domain's stores are
        # typed against `Redis`, which RedisCluster does not subclass.
        client = BlockingCluster.from_url(
            url,
            max_connections=MAX_CONNECTIONS + CLUSTER_POOL_HEADROOM,
            socket_connect_timeout=5,
            **kwargs,
        )
        return cast(aioredis.Redis, client)
    # A blocking pool: a rush of handlers waits for a connection instead of failing.
    # A lost network fails a new connection in seconds instead of hanging (Redis down: 503).
    kwargs.setdefault("driver_info", DRIVER_INFO)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=20, socket_connect_timeout=5, **kwargs
    )
    return aioredis.Redis.from_pool(pool)


async def open_client(url: str, *, cluster: bool = False, **kwargs: Any) -> aioredis.Redis:
    """`connect`, then one round trip before the first burst: a cluster client
    that meets concurrent scripts before it knows its nodes was seen to run
    some of them twice (a connection shared while it was being set up)."""
    client = connect(url, cluster=cluster, **kwargs)
    if cluster:
        await cast(RedisCluster, client).initialize()
    await client.ping()
    return client
