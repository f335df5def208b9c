"""Socket.IO events between processes (issue 14, "Room events between
processes"): a python-socketio client manager that publishes each emit on the
Redis channel of the droproom room it concerns, and subscribes a process only
to the channels of rooms it holds clients of (`manager.RoomRelay`). Sharded
pub/sub on a Redis 7 Cluster (`transport`). Imports nothing of the domain.
"""
