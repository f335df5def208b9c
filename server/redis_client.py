"""Redis clients: one Redis (a blocking pool) or, with
`DROPROOM_REDIS_CLUSTER=1`, a Redis Cluster client that finds the other
nodes from the one `REDIS_URL` names and sends each command and script to
the node owning its hash slot (every script of ours touches one slot).
"""

from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

MAX_CONNECTIONS = 256


def connect(url: str, *, cluster: bool = False, **kwargs: Any) -> aioredis.Redis:
    if cluster:
        # The cluster client speaks the same commands; the domain's stores are
        # typed against `Redis`, which RedisCluster does not subclass.
        client = RedisCluster.from_url(url, max_connections=MAX_CONNECTIONS, **kwargs)
        return cast(aioredis.Redis, client)
    # A blocking pool: a rush of handlers waits for a connection instead of failing.
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=20, **kwargs
    )
    return aioredis.Redis.from_pool(pool)
